//! The per-file validation report, as Azure's dataset "report" file gives it.

use serde::Serialize;

/// Whether a file (or line) made it into the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileStatus {
    /// Kept.
    Accepted,
    /// Left out; `reason` says why.
    Rejected,
}

/// One file or line of the upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// File name in the zip, or `name:line` for a line of a text file.
    pub name: String,
    /// Accepted or rejected.
    pub status: FileStatus,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Audio length, seconds, for audio files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
}

impl FileReport {
    pub(crate) fn accepted(name: impl Into<String>, duration_secs: Option<f64>) -> Self {
        FileReport {
            name: name.into(),
            status: FileStatus::Accepted,
            reason: None,
            duration_secs,
        }
    }

    pub(crate) fn rejected(name: impl Into<String>, reason: impl Into<String>) -> Self {
        FileReport {
            name: name.into(),
            status: FileStatus::Rejected,
            reason: Some(reason.into()),
            duration_secs: None,
        }
    }
}

/// The whole report: counts plus every file's (or rejected line's) entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Items kept: utterances, audio files, text lines or pronunciations.
    pub accepted_line_count: u32,
    /// Items left out.
    pub rejected_line_count: u32,
    /// Audio kept, seconds.
    pub duration_secs: f64,
    /// Every file, and every rejected line of a text file.
    pub files: Vec<FileReport>,
}

impl Report {
    pub(crate) fn push(&mut self, r: FileReport) {
        match r.status {
            FileStatus::Accepted => {
                self.accepted_line_count += 1;
                self.duration_secs += r.duration_secs.unwrap_or(0.0);
            }
            FileStatus::Rejected => self.rejected_line_count += 1,
        }
        self.files.push(r);
    }

    /// Azure's `duration` property: ISO 8601, e.g. `PT4M12S`.
    pub fn iso_duration(&self) -> String {
        let total = self.duration_secs.round() as u64;
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
        let mut out = String::from("PT");
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
        out
    }
}

//! Reading an untrusted zip: flat, bounded, and checked entry by entry.
//!
//! The headers of a zip are claims, not facts: every entry is decompressed through a reader
//! capped at the smaller of the per-entry limit, the remaining total budget and (for zip-bomb
//! defence) `max_ratio` times its compressed size, so no upload can make the server hold more
//! than the limits say, whatever it declares.

use std::collections::HashSet;
use std::io::{Cursor, Read};

use crate::{DatasetError, Limits};

/// Below this, an entry's expansion ratio is not checked (tiny text files compress very well).
const RATIO_FLOOR: u64 = 1024 * 1024;

/// One file of the zip, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (a plain file name: no folders).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

fn zip_slip(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/') || n.split('/').any(|seg| seg == "..") || n.as_bytes().get(1) == Some(&b':')
}

/// Reads every entry of a flat zip under `limits`. Refuses (see [`DatasetError`]) anything
/// that is not a plain, flat, unencrypted set of distinct files within the limits.
pub fn read_flat_zip(bytes: &[u8], limits: &Limits) -> Result<Vec<Entry>, DatasetError> {
    if bytes.is_empty() {
        return Err(DatasetError::Empty);
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| DatasetError::NotAZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(DatasetError::TooManyEntries {
            limit: limits.max_entries,
        });
    }
    let mut seen = HashSet::new();
    let mut budget = limits.max_total_bytes;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let (name, compressed) = {
            let f = archive
                .by_index_raw(i)
                .map_err(|e| DatasetError::NotAZip(e.to_string()))?;
            let name = f.name().to_owned();
            if zip_slip(&name) || f.enclosed_name().is_none() {
                return Err(DatasetError::ZipSlip { name });
            }
            if f.is_symlink() {
                return Err(DatasetError::Symlink { name });
            }
            if f.is_dir() || name.contains('/') || name.contains('\\') {
                return Err(DatasetError::NestedFolder { name });
            }
            if f.encrypted() {
                return Err(DatasetError::Encrypted { name });
            }
            (name, f.compressed_size())
        };
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(DatasetError::Duplicate { name });
        }
        let bomb_cap = compressed.saturating_mul(limits.max_ratio).max(RATIO_FLOOR);
        let cap = limits.max_entry_bytes.min(budget).min(bomb_cap);
        let f = archive
            .by_index(i)
            .map_err(|e| DatasetError::NotAZip(format!("{name}: {e}")))?;
        let mut data = Vec::new();
        f.take(cap + 1)
            .read_to_end(&mut data)
            .map_err(|e| DatasetError::NotAZip(format!("{name}: {e}")))?;
        let got = data.len() as u64;
        if got > cap {
            return Err(
                if cap == bomb_cap && bomb_cap < limits.max_entry_bytes.min(budget) {
                    DatasetError::ZipBomb {
                        name,
                        limit: limits.max_ratio,
                    }
                } else if cap == budget && budget < limits.max_entry_bytes {
                    DatasetError::TotalTooLarge {
                        limit: limits.max_total_bytes,
                    }
                } else {
                    DatasetError::EntryTooLarge {
                        name,
                        limit: limits.max_entry_bytes,
                    }
                },
            );
        }
        budget -= got;
        out.push(Entry { name, bytes: data });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    /// A zip of `(name, bytes)` entries, deflated.
    pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, SimpleFileOptions::default())
                    .unwrap();
                continue;
            }
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_flat_zip_reads_back() {
        let z = zip_of(&[("a.wav", b"RIFF"), ("trans.txt", b"a.wav\thello\n")]);
        let e = read_flat_zip(&z, &Limits::default()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].name, "trans.txt");
        assert_eq!(e[1].bytes, b"a.wav\thello\n");
    }

    #[test]
    fn unsafe_layouts_are_refused_by_name() {
        let l = Limits::default();
        let cases: Vec<(Vec<u8>, DatasetError)> = vec![
            (
                zip_of(&[("../evil.wav", b"x")]),
                DatasetError::ZipSlip {
                    name: "../evil.wav".into(),
                },
            ),
            (
                zip_of(&[("/etc/passwd", b"x")]),
                DatasetError::ZipSlip {
                    name: "/etc/passwd".into(),
                },
            ),
            (
                zip_of(&[("..\\evil.wav", b"x")]),
                DatasetError::ZipSlip {
                    name: "..\\evil.wav".into(),
                },
            ),
            (
                zip_of(&[("sub/a.wav", b"x")]),
                DatasetError::NestedFolder {
                    name: "sub/a.wav".into(),
                },
            ),
            (
                zip_of(&[("sub/", b"")]),
                DatasetError::NestedFolder {
                    name: "sub/".into(),
                },
            ),
            (
                zip_of(&[("a.wav", b"x"), ("A.WAV", b"y")]),
                DatasetError::Duplicate {
                    name: "A.WAV".into(),
                },
            ),
        ];
        for (z, want) in cases {
            assert_eq!(read_flat_zip(&z, &l).unwrap_err(), want);
        }
    }

    #[test]
    fn a_symlink_is_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("link.wav", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let z = w.finish().unwrap().into_inner();
        assert_eq!(
            read_flat_zip(&z, &Limits::default()).unwrap_err(),
            DatasetError::Symlink {
                name: "link.wav".into()
            }
        );
    }

    #[test]
    fn bombs_and_oversized_entries_stop_at_the_limit() {
        // 32 MiB of zeros deflate to ~32 KiB: a 1000x ratio.
        let zeros = vec![0u8; 32 * 1024 * 1024];
        let z = zip_of(&[("bomb.wav", &zeros)]);
        assert!(z.len() < 200 * 1024);
        assert_eq!(
            read_flat_zip(&z, &Limits::default()).unwrap_err(),
            DatasetError::ZipBomb {
                name: "bomb.wav".into(),
                limit: 200
            }
        );
        let small = Limits {
            max_entry_bytes: 1000,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let z = zip_of(&[("big.wav", &[1u8; 1001])]);
        assert_eq!(
            read_flat_zip(&z, &small).unwrap_err(),
            DatasetError::EntryTooLarge {
                name: "big.wav".into(),
                limit: 1000
            }
        );
        let total = Limits {
            max_total_bytes: 1500,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let z = zip_of(&[("a.wav", &[1u8; 1000]), ("b.wav", &[2u8; 1000])]);
        assert_eq!(
            read_flat_zip(&z, &total).unwrap_err(),
            DatasetError::TotalTooLarge { limit: 1500 }
        );
        let few = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        assert_eq!(
            read_flat_zip(&z, &few).unwrap_err(),
            DatasetError::TooManyEntries { limit: 1 }
        );
    }

    #[test]
    fn garbage_is_not_a_zip() {
        assert_eq!(
            read_flat_zip(b"", &Limits::default()).unwrap_err(),
            DatasetError::Empty
        );
        assert!(matches!(
            read_flat_zip(b"PK\x03\x04 truncated", &Limits::default()),
            Err(DatasetError::NotAZip(_))
        ));
        let mut z = zip_of(&[("a.wav", &[7u8; 5000])]);
        let mid = z.len() / 2;
        z.truncate(mid);
        assert!(matches!(
            read_flat_zip(&z, &Limits::default()),
            Err(DatasetError::NotAZip(_))
        ));
    }
}

//! The reader of Azure Custom Speech `trans.txt` files.

/// Parses an Azure Custom Speech `trans.txt` (`file<TAB>transcript` per line). Tolerates a BOM,
/// CRLF line ends, spaces around names and transcripts, and blank lines. A line without a tab is
/// split at its first whitespace.
pub fn parse_trans_txt(text: &str) -> Vec<(String, String)> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                return None;
            }
            let (name, transcript) = line
                .split_once('\t')
                .or_else(|| line.split_once(char::is_whitespace))
                .unwrap_or((line, ""));
            Some((name.trim().to_string(), transcript.trim().to_string()))
        })
        .collect()
}

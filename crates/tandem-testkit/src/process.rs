//! What every `tandem` child process shares: its first stdout line is its URL.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

/// Reads the child's first stdout line (`tandem: … listening on http://ADDR`) and returns the
/// URL at its end. Later lines are drained in the background so the child never blocks on a
/// full pipe. Panics, naming `what`, if no such line comes within a minute.
pub(crate) fn read_listen_url(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout must be piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} printed no address"));
    line.rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line from {what}: {line:?}"))
        .to_owned()
}

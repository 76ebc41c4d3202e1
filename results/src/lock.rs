//! Who may have the results file open. DuckDB lets one process write a database file: while it
//! is open, the process holds an OS lock on it, and a second process's open fails with
//! "Could not set lock on file … Conflicting lock is held in <exe> (PID n)". That lock is a
//! POSIX record lock, which the kernel drops when its process dies (so a `kill -9` leaves no
//! stale lock) but which never conflicts *within* one process: two DuckDB instances in one
//! process would both get it and overwrite each other's blocks. So this process keeps its own
//! table of the files it has open, and refuses a second open of the same file the same way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// If `message` (a DuckDB open error) says another process holds the file, who holds it.
pub(crate) fn lock_holder(message: &str) -> Option<String> {
    if !message.contains("Could not set lock on file") {
        return None;
    }
    let holder = message
        .split_once("Conflicting lock is held in ")
        .map(|(_, rest)| rest.split(". See also").next().unwrap_or(rest).trim().trim_end_matches('.').to_string())
        .unwrap_or_else(|| "holder unknown".to_string());
    Some(holder)
}

fn open_files() -> &'static Mutex<HashSet<PathBuf>> {
    static OPEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The file's identity for the in-process table: its directory resolved (the file itself may
/// not exist yet), so `./a.duckdb` and `/abs/a.duckdb` are one file.
fn identity(path: &Path) -> PathBuf {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// This process's claim on a results file; released on drop.
#[derive(Debug)]
pub(crate) struct InProcessClaim(PathBuf);

impl InProcessClaim {
    /// `None` when this process already has the file open.
    pub(crate) fn take(path: &Path) -> Option<InProcessClaim> {
        let id = identity(path);
        let mut open = open_files().lock().unwrap_or_else(|e| e.into_inner());
        // Not `then_some`: it would build (and so drop, releasing the file) a claim on refusal.
        if open.insert(id.clone()) {
            Some(InProcessClaim(id))
        } else {
            None
        }
    }
}

impl Drop for InProcessClaim {
    fn drop(&mut self) {
        open_files().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_duckdbs_message() {
        let msg = "IO Error: Could not set lock on file \"/tmp/a.duckdb\": Conflicting lock is held in \
                   /usr/bin/webaccel (PID 4242). See also https://duckdb.org/docs/stable/connect/concurrency";
        assert_eq!(lock_holder(msg).as_deref(), Some("/usr/bin/webaccel (PID 4242)"));
        assert_eq!(lock_holder("IO Error: Could not set lock on file \"/x\"").as_deref(), Some("holder unknown"));
        assert_eq!(lock_holder("IO Error: Permission denied"), None);
    }

    #[test]
    fn one_claim_per_file_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let a = InProcessClaim::take(&dir.path().join("a.duckdb")).expect("first claim");
        let again = dir.path().join(".").join("a.duckdb");
        assert!(InProcessClaim::take(&again).is_none());
        assert!(InProcessClaim::take(&dir.path().join("b.duckdb")).is_some());
        drop(a);
        assert!(InProcessClaim::take(&again).is_some());
    }
}

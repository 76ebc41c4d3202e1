//! `%%rust` cells: evcxr in a helper process (`webaccel-rust`, its own binary so that this one
//! never links rust-analyzer), started on the first Rust cell and spoken to in JSON lines
//! (`webaccel_rust_protocol`). evcxr cannot be interrupted, so an interrupt kills the helper's
//! process group (the helper, evcxr's child running the code, any cargo build); the session's
//! Rust variables go with it, the user is told so, and the next Rust cell starts a new one.
//!
//! Each kernel keeps its files in its own directory (evcxr's build directory, which a kill would
//! otherwise leak, and the bridge's socket); shutdown removes it, and a kernel that starts
//! removes those of kernels that died without one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jupyter_protocol::Media;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use webaccel_rust_protocol::{Event, Request, CELL_CRATE_ENV, CELL_SOCKET_ENV};
use webaccel_scripting::Stream;

use crate::evaluator::{Emitted, Evaluator};
use crate::shell::{CellError, CellOutcome, CellValue};

/// A cell whose first line is this runs as Rust.
const MAGIC: &str = "%%rust";

/// The crate every Rust session depends on, written out from the sources in this repository.
const CELL_CRATE: [(&str, &str); 2] = [
    ("Cargo.toml", include_str!("../../rust-cells/webaccel_cell/Cargo.toml")),
    ("src/lib.rs", include_str!("../../rust-cells/webaccel_cell/src/lib.rs")),
];

/// How long completion and inspection wait for evcxr.
const ASK_WAIT: Duration = Duration::from_secs(5);

/// The process group of the live helper (0: none). A kernel has one helper at a time, and the
/// signal handler (which exits the kernel) must reach it too, so it is the process's.
static HELPER_GROUP: AtomicI32 = AtomicI32::new(0);

pub fn is_rust_cell(code: &str) -> bool {
    code.lines().next().is_some_and(|first| first.trim() == MAGIC)
}

/// The code evcxr gets: the magic blanked to spaces, so that lines and offsets stay the cell's.
fn body(code: &str) -> String {
    code.replacen(MAGIC, &" ".repeat(MAGIC.len()), 1)
}

pub struct RustCells {
    /// This kernel's: evcxr's build directory and the bridge's socket.
    dir: PathBuf,
    crate_dir: PathBuf,
    evaluator: Arc<Evaluator>,
    helper: tokio::sync::Mutex<Option<Helper>>,
    /// Whether the helper runs a cell (or starts).
    busy: AtomicBool,
    interrupted: AtomicBool,
    /// Set by shutdown: no helper starts after it (cells queued behind a shutdown are refused).
    closed: AtomicBool,
    /// What the helper said when it started: whether evcxr can complete here.
    completion: AtomicBool,
    bridge: Mutex<bool>,
}

struct Helper {
    child: Child,
    stdin: ChildStdin,
    events: Lines<BufReader<ChildStdout>>,
    /// Answers to completion or inspection requests given up on (they come later, in order).
    stale: usize,
}

impl RustCells {
    pub fn new(evaluator: Arc<Evaluator>) -> RustCells {
        let root = kernels_dir();
        sweep(&root);
        RustCells {
            dir: kernel_dir(),
            crate_dir: crate_dir(),
            evaluator,
            helper: tokio::sync::Mutex::new(None),
            busy: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            completion: AtomicBool::new(false),
            bridge: Mutex::new(false),
        }
    }

    /// Runs one Rust cell; what it prints goes to `emit` as it comes.
    pub async fn execute(&self, code: &str, emit: &tokio::sync::mpsc::UnboundedSender<Emitted>) -> CellOutcome {
        let mut slot = self.helper.lock().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(CellError::new("RustUnavailable", "the kernel is shutting down; this Rust cell did not run".into()));
        }
        self.interrupted.store(false, Ordering::SeqCst);
        self.busy.store(true, Ordering::SeqCst);
        // A helper that died between cells (killed from outside, out of memory) took the
        // session with it: say so, and run this cell in a new one.
        if let Some(status) = slot.as_mut().and_then(|h| h.child.try_wait().ok().flatten()) {
            self.forget(&mut slot).await;
            let note = format!(
                "the Rust session had ended ({status}) and its variables were lost; this cell runs in a new session\n"
            );
            let _ = emit.send(Emitted::Text(Stream::Stderr, note));
        }
        let outcome = self.run(&mut slot, code, emit).await;
        self.busy.store(false, Ordering::SeqCst);
        let dead = slot.as_mut().is_some_and(|h| h.child.try_wait().ok().flatten().is_some());
        if outcome.is_ok() && self.interrupted.load(Ordering::SeqCst) {
            // The interrupt came as the cell finished: its result stands, but the kill took the
            // session (or is about to), so the next cell must not talk to a dead helper.
            self.forget(&mut slot).await;
            let note = "interrupted as the cell finished: the Rust session's variables were lost, and the next \
                        Rust cell starts a new session\n";
            let _ = emit.send(Emitted::Text(Stream::Stderr, note.into()));
        } else if outcome.is_err() && dead {
            self.forget(&mut slot).await;
        }
        outcome
    }

    async fn run(
        &self,
        slot: &mut Option<Helper>,
        code: &str,
        emit: &tokio::sync::mpsc::UnboundedSender<Emitted>,
    ) -> CellOutcome {
        if slot.is_none() {
            let mut helper = self.start()?;
            // An interrupt that came before the helper's group was known could not kill it.
            if self.interrupted.load(Ordering::SeqCst) {
                *slot = Some(helper);
                self.forget(slot).await;
                return Err(self.ended(Err("interrupted".into()), "starting evcxr"));
            }
            // The bridge crate compiles before Ready; an interrupt now kills that build.
            match self.next_event(&mut helper, emit).await {
                Ok(Event::Ready { completion }) => {
                    self.completion.store(completion, Ordering::SeqCst);
                    *slot = Some(helper);
                }
                other => {
                    *slot = Some(helper);
                    self.forget(slot).await;
                    return Err(self.ended(other, "starting evcxr"));
                }
            }
        }
        let helper = slot.as_mut().expect("started above");
        let request = Request::Execute { code: body(code) };
        if let Err(e) = send(&mut helper.stdin, &request).await {
            self.forget(slot).await;
            return Err(CellError::new(
                "RustError",
                format!("the Rust helper stopped listening ({e}); run the cell again"),
            ));
        }
        match self.next_event(helper, emit).await {
            Ok(Event::Done { bundle }) => Ok(value(bundle)),
            other => {
                let ended = self.ended(other, "running the cell");
                if ended.ename == "Interrupted" || ended.ename == "RustError" {
                    self.forget(slot).await;
                }
                Err(ended)
            }
        }
    }

    /// The next event that ends a request; printed lines on the way go to `emit`.
    async fn next_event(
        &self,
        helper: &mut Helper,
        emit: &tokio::sync::mpsc::UnboundedSender<Emitted>,
    ) -> Result<Event, String> {
        loop {
            let line = match helper.events.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return Err("its output ended".into()),
                Err(e) => return Err(e.to_string()),
            };
            match serde_json::from_str::<Event>(&line) {
                Ok(Event::Stdout { text }) => {
                    let _ = emit.send(Emitted::Text(Stream::Stdout, text));
                }
                Ok(Event::Stderr { text }) => {
                    let _ = emit.send(Emitted::Text(Stream::Stderr, text));
                }
                // The late answer to a question given up on.
                Ok(Event::Completions { .. } | Event::Inspection { .. }) if helper.stale > 0 => helper.stale -= 1,
                Ok(event) => return Ok(event),
                Err(_) => tracing::warn!("the Rust helper wrote a line that is not an event: {line}"),
            }
        }
    }

    /// The error for a request that did not end in `Done`/`Ready`: evcxr's own, or the
    /// helper's death (by interrupt, or otherwise).
    fn ended(&self, event: Result<Event, String>, doing: &str) -> CellError {
        match event {
            Ok(Event::Failed { ename, evalue, traceback }) => CellError { ename, evalue, traceback },
            _ if self.interrupted.load(Ordering::SeqCst) => CellError::new(
                "Interrupted",
                "interrupted by the user; the Rust session's variables were lost (evcxr cannot stop a cell \
                 and keep them), and the next Rust cell starts a new session"
                    .into(),
            ),
            Ok(other) => CellError::new("RustError", format!("the Rust helper answered {other:?} while {doing}")),
            Err(why) => CellError::new(
                "RustError",
                format!("the Rust helper exited while {doing} ({why}); its variables were lost, and the next Rust cell starts a new session"),
            ),
        }
    }

    fn start(&self) -> Result<Helper, CellError> {
        let binary = helper_binary()?;
        let unavailable = |what: &str, e: std::io::Error| CellError::new("RustUnavailable", format!("{what}: {e}"));
        let evcxr_dir = self.dir.join("evcxr");
        private_root(&kernels_dir()).map_err(|e| unavailable("cannot use the Rust cells' directory", e))?;
        std::fs::create_dir_all(&evcxr_dir)
            .map_err(|e| unavailable(&format!("cannot create {}", evcxr_dir.display()), e))?;
        write_crate(&self.crate_dir).map_err(|e| unavailable("cannot write the webaccel_cell crate", e))?;
        let socket = self.dir.join("bridge.sock");
        {
            let mut listening = self.bridge.lock().unwrap_or_else(|e| e.into_inner());
            if !*listening {
                crate::cell_bridge::listen(&socket, self.evaluator.clone())
                    .map_err(|e| unavailable(&format!("cannot listen at {}", socket.display()), e))?;
                *listening = true;
            }
        }
        let mut command = tokio::process::Command::new(&binary);
        command
            .env(CELL_CRATE_ENV, &self.crate_dir)
            .env(CELL_SOCKET_ENV, &socket)
            .env("EVCXR_TMPDIR", &evcxr_dir)
            // A target directory meant for webaccel's own build (as the suite sets) is not the
            // one evcxr's builds belong in.
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own group, so that one kill stops it and everything under it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            let named = if std::env::var_os("WEBACCEL_RUST_BIN").is_some() { " (named by WEBACCEL_RUST_BIN)" } else { "" };
            unavailable(&format!("cannot start the Rust helper {}{named}", binary.display()), e)
        })?;
        HELPER_GROUP.store(child.id().map_or(0, |id| id as i32), Ordering::SeqCst);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both piped above")
        };
        Ok(Helper { child, stdin, events: BufReader::new(stdout).lines(), stale: 0 })
    }

    /// Kills the helper in `slot` (its whole group) and reaps it.
    async fn forget(&self, slot: &mut Option<Helper>) {
        kill_helper();
        if let Some(mut helper) = slot.take() {
            let _ = helper.child.kill().await;
        }
    }

    /// Stops a running Rust cell at once (nothing happens between cells).
    pub fn interrupt(&self) {
        if self.busy.load(Ordering::SeqCst) {
            self.interrupted.store(true, Ordering::SeqCst);
            kill_group(HELPER_GROUP.load(Ordering::SeqCst));
        }
    }

    /// Whether to ask evcxr for completion and inspection (it has said it can).
    pub fn completes(&self) -> bool {
        self.completion.load(Ordering::SeqCst)
    }

    /// Completion in a Rust cell (`cursor` in bytes): the replaced range and the matches; empty
    /// when evcxr cannot complete or is busy with a cell.
    pub async fn complete(&self, code: &str, cursor: usize) -> (usize, usize, Vec<String>) {
        let request = Request::Complete { code: body(code), position: cursor };
        match self.ask(request).await {
            Some(Event::Completions { start, end, matches }) => (start, end, matches),
            _ => (cursor, cursor, vec![]),
        }
    }

    pub async fn inspect(&self, code: &str, cursor: usize) -> Option<String> {
        match self.ask(Request::Inspect { code: body(code), position: cursor }).await {
            Some(Event::Inspection { text }) => text,
            _ => None,
        }
    }

    async fn ask(&self, request: Request) -> Option<Event> {
        if !self.completes() {
            return None;
        }
        let mut slot = self.helper.try_lock().ok()?;
        let helper = slot.as_mut()?;
        send(&mut helper.stdin, &request).await.ok()?;
        let (sink, _) = tokio::sync::mpsc::unbounded_channel();
        // Other requests wait meanwhile; rust-analyzer's first answer (loading std) is the slow one.
        match tokio::time::timeout(ASK_WAIT, self.next_event(helper, &sink)).await {
            Ok(answer) => answer.ok(),
            Err(_) => {
                helper.stale += 1;
                None
            }
        }
    }

    /// Stops the helper and everything under it, and removes this kernel's directory.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.interrupted.store(true, Ordering::SeqCst);
        kill_helper();
        // The cell that was running ends as soon as the helper's output does; reap the helper.
        if let Ok(mut slot) = tokio::time::timeout(Duration::from_secs(1), self.helper.lock()).await {
            if let Some(mut helper) = slot.take() {
                let _ = helper.child.kill().await;
            }
        }
        remove_dir(&self.dir).await;
    }
}

/// Kills the live helper's group (and forgets it).
pub fn kill_helper() {
    kill_group(HELPER_GROUP.swap(0, Ordering::SeqCst));
}

/// For a kernel exiting on a signal, with no runtime to wait in: kills the helper's group and
/// removes this kernel's directory at once (what a dying process still writes there, the next
/// kernel's sweep removes).
pub fn kill_helper_and_remove_files() {
    kill_helper();
    let _ = std::fs::remove_dir_all(kernel_dir());
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

async fn send(stdin: &mut ChildStdin, request: &Request) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stdin.write_all(&line).await?;
    stdin.flush().await
}

/// evcxr's MIME bundle as Jupyter's (JSON types are JSON values there, not text).
fn value(bundle: BTreeMap<String, String>) -> Option<CellValue> {
    if bundle.is_empty() {
        return None;
    }
    let plain = bundle.get("text/plain").cloned().unwrap_or_default();
    let map: serde_json::Map<String, serde_json::Value> = bundle
        .into_iter()
        .map(|(mime, content)| {
            let json = mime.ends_with("json").then(|| serde_json::from_str(&content).ok()).flatten();
            (mime, json.unwrap_or(serde_json::Value::String(content)))
        })
        .collect();
    let data = serde_json::from_value::<Media>(serde_json::Value::Object(map)).unwrap_or_default();
    Some(CellValue { data, plain })
}

fn helper_binary() -> Result<PathBuf, CellError> {
    if let Some(path) = std::env::var_os("WEBACCEL_RUST_BIN") {
        return Ok(PathBuf::from(path));
    }
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("webaccel-rust")));
    match beside {
        Some(path) if path.is_file() => Ok(path),
        path => Err(CellError::new(
            "RustUnavailable",
            format!(
                "Rust cells need the webaccel-rust helper, which is not beside this kernel ({}): build it with \
                 `cargo build -p webaccel-rust` (add --release for a release kernel), or set WEBACCEL_RUST_BIN",
                path.map_or_else(|| "its directory is unknown".into(), |p| p.display().to_string())
            ),
        )),
    }
}

/// Where the bridge crate is written: a directory named by its sources, so that kernels of
/// different versions running at once each keep their own. Cargo rebuilds a path dependency
/// whose sources changed, so an older kernel's next `:dep` would otherwise compile a newer
/// kernel's bridge, which may not speak its protocol. Each directory is a few kilobytes, left
/// for the next kernel of that version.
fn crate_dir() -> PathBuf {
    use std::hash::{Hash, Hasher};
    // Stable within one build of the kernel, which is all the name needs.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    CELL_CRATE.hash(&mut hasher);
    cache_dir().join("rust-cells").join(format!("webaccel_cell-{:016x}", hasher.finish()))
}

/// Writes the bridge crate where the helper finds it, leaving files that already match (so
/// that evcxr does not rebuild it).
fn write_crate(dir: &Path) -> std::io::Result<()> {
    for (name, text) in CELL_CRATE {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("a file in the crate"))?;
        // Kernels starting together each write their own file and rename it into place.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(())
}

/// Removes the directories of kernels that are no longer running.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("kernel-")).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::debug!("removing a dead kernel's Rust files: {}", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes `dir`, again after a moment if a dying process was still writing in it.
async fn remove_dir(dir: &Path) {
    for _ in 0..10 {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return,
        }
    }
    tracing::warn!("could not remove {}", dir.display());
}

/// Where this user's kernels keep their Rust files: the system's temporary directory, as
/// evcxr's default, in a directory of the user's own (mode 0700: on a shared machine another
/// user could otherwise not create theirs, or could plant files in a build of ours).
/// Not the cache under the home directory: rustc writes the user code's library with a relative
/// rpath to the toolchain's libstd from the `deps` directory, evcxr loads cargo's copy one level
/// up, and the path is only right by luck when it climbs to `/` (as from /tmp): under
/// ~/.cache, beside ~/.rustup, the first cell failed with "dlopen failed".
pub fn kernels_dir() -> PathBuf {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("webaccel-rust-cells-{uid}"))
}

fn kernel_dir() -> PathBuf {
    kernels_dir().join(format!("kernel-{}", std::process::id()))
}

/// Creates this user's root (0700) and checks that it is theirs and no one else's.
fn private_root(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(root)?;
    // SAFETY: as above.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user's alone (owner {}, mode {:o}); remove it",
            root.display(),
            meta.uid(),
            meta.permissions().mode() & 0o7777
        )));
    }
    Ok(())
}

fn cache_dir() -> PathBuf {
    std::env::var_os("WEBACCEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("webaccel")))
        .unwrap_or_else(|| std::env::temp_dir().join("webaccel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_crate_directory_is_named_by_its_sources() {
        let dir = crate_dir();
        assert_eq!(dir, crate_dir());
        let name = dir.file_name().and_then(|n| n.to_str()).expect("a name");
        let hash = name.strip_prefix("webaccel_cell-").expect("the crate's name first");
        assert_eq!(hash.len(), 16, "{name}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    }

    #[test]
    fn a_rust_cell_is_known_by_its_first_line_and_keeps_its_lines_and_offsets() {
        assert!(is_rust_cell("%%rust\nlet x = 1;"));
        assert!(is_rust_cell("  %%rust  \nx"));
        assert!(!is_rust_cell("let s = \"%%rust\";"));
        assert!(!is_rust_cell("\n%%rust\nx"));
        let code = "%%rust\nlet x = 1;";
        assert_eq!(body(code).len(), code.len());
        assert_eq!(body(code).lines().nth(1), Some("let x = 1;"));
    }

    #[test]
    fn json_types_become_json_values_and_text_stays_text() {
        let bundle = BTreeMap::from([
            ("text/plain".to_string(), "42".to_string()),
            ("application/json".to_string(), "{\"a\": 1}".to_string()),
        ]);
        let shown = value(bundle).unwrap();
        assert_eq!(shown.plain, "42");
        let json = serde_json::to_value(&shown.data).unwrap();
        assert_eq!(json["application/json"]["a"], 1);
        assert_eq!(json["text/plain"], "42");
        assert!(value(BTreeMap::new()).is_none());
    }

    #[test]
    fn the_root_is_made_private_and_one_others_can_enter_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        private_root(&root).unwrap();
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        private_root(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = private_root(&root).unwrap_err().to_string();
        assert!(refused.contains("mode 755") && refused.contains("remove it"), "{refused}");
    }

    #[test]
    fn a_written_crate_matches_the_sources_and_is_left_alone_after() {
        let dir = tempfile::tempdir().unwrap();
        write_crate(dir.path()).unwrap();
        let lib = dir.path().join("src/lib.rs");
        assert_eq!(std::fs::read_to_string(&lib).unwrap(), CELL_CRATE[1].1);
        let written = std::fs::metadata(&lib).unwrap().modified().unwrap();
        write_crate(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&lib).unwrap().modified().unwrap(), written);
    }
}

//! Finding and loading `libonnxruntime.so`. The pinned PyPI wheel (`tests/requirements.txt`,
//! installed into webaccel's venv by setup) carries it inside the package as
//! `onnxruntime/capi/libonnxruntime.so.<version>`, so nothing is downloaded or compiled.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::NativeError;
use crate::session::NativeSession;

/// The variable that names the library, when it is not the venv's.
pub const LIBRARY_VAR: &str = "WEBACCEL_ONNXRUNTIME";

/// Native onnxruntime, loaded. One per process: ort binds the first library it loads for the
/// life of the process.
pub struct NativeRuntime {
    env: Environment,
    pub library: PathBuf,
    /// onnxruntime's own version ("1.32.0").
    pub version: String,
}

/// ort keeps the first library it loads; a second load of another path would silently use the
/// first, so the process remembers which one it is.
static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

impl NativeRuntime {
    /// `WEBACCEL_ONNXRUNTIME` when set (the only candidate then), else the library inside the
    /// venv's onnxruntime wheel.
    pub fn find() -> Result<PathBuf, NativeError> {
        if let Some(path) = std::env::var_os(LIBRARY_VAR) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(NativeError::NotFound { searched: format!("{} (from {LIBRARY_VAR})", path.display()) })
            };
        }
        let cache = std::env::var_os("WEBACCEL_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/webaccel")))
            .unwrap_or_else(|| PathBuf::from(".cache/webaccel"));
        let lib = cache.join("venv/lib");
        let pattern = lib.join("python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*");
        let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|python| {
            let capi = python.path().join("site-packages/onnxruntime/capi");
            let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so.")))
                .collect();
            libs.sort();
            libs.pop()
        });
        found.ok_or_else(|| NativeError::NotFound { searched: pattern.display().to_string() })
    }

    /// Loads the library at `path` (or, if this process loaded one already, checks it is the
    /// same).
    pub fn open(path: &Path) -> Result<Self, NativeError> {
        let failed = |reason: String| NativeError::Load { path: path.to_path_buf(), reason };
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        match loaded.as_ref() {
            Some(first) if first != path => {
                return Err(failed(format!("this process already loaded {}; restart to use another", first.display())))
            }
            Some(_) => {}
            None => {
                // The dlopen happens here, before any other ort call: without it ort would look
                // for a library on its own (and panic when there is none).
                ort::init_from(path).map_err(|e| failed(e.to_string()))?;
                *loaded = Some(path.to_path_buf());
            }
        }
        let env = ort::init().with_name("webaccel").with_telemetry(false).build().map_err(|e| failed(e.to_string()))?;
        let version = version_of(ort::info(), path);
        Ok(NativeRuntime { env, library: path.to_path_buf(), version })
    }

    /// A CPU session for `model` with `threads` intra-op threads (and one inter-op thread), all
    /// graph optimisations on, as the page's sessions have them. Its creation is timed.
    pub fn load(&self, model: &Path, threads: usize) -> Result<NativeSession, NativeError> {
        let failed = |e: ort::Error| NativeError::Session { model: model.to_path_buf(), reason: e.to_string() };
        let started = Instant::now();
        let session = Session::builder(&self.env)
            .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::All).map_err(Into::into))
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(failed)?;
        let create_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(NativeSession::new(session, create_ms, threads))
    }

    /// How a row names this reference: `native onnxruntime 1.32.0 CPU`.
    pub fn label(&self) -> String {
        format!("native onnxruntime {} CPU", self.version)
    }
}

/// onnxruntime's version from its build string (`git-branch=rel-1.32.0, ...`), else from the
/// library's file name (`libonnxruntime.so.1.32.0`).
fn version_of(build_info: &str, path: &Path) -> String {
    let from_branch = build_info
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()));
    let from_name = || {
        path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("libonnxruntime.so.")).map(str::to_string)
    };
    from_branch.map(str::to_string).or_else(from_name).unwrap_or_else(|| "(unknown version)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_build_string_or_the_file_name() {
        let path = Path::new("/x/libonnxruntime.so.1.32.0");
        assert_eq!(version_of("ORT Build Info: git-branch=rel-1.31.2, git-commit-id=abc", path), "1.31.2");
        assert_eq!(version_of("ORT Build Info: git-branch=main, build type=Release", path), "1.32.0");
        assert_eq!(version_of("", Path::new("/x/onnxruntime.so")), "(unknown version)");
    }
}

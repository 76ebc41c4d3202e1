//! `webaccel install`: writes the kernelspec where Jupyter looks for it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

pub const KERNEL_NAME: &str = "webaccel";
pub const DISPLAY_NAME: &str = "WebAccel (Rhai)";

/// Jupyter's user data directory, by jupyter_core's rules: `JUPYTER_DATA_DIR`, else the
/// platform's per-user location.
pub fn jupyter_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = dirs::home_dir().context("cannot find the home directory; set JUPYTER_DATA_DIR or pass --prefix")?;
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Jupyter")
    } else if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from).unwrap_or(home).join("jupyter")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".local/share"))
            .join("jupyter")
    })
}

/// The `kernels/` directory an install goes to: under `--prefix` (as `jupyter kernelspec
/// install --prefix` does), else the user data directory.
pub fn kernels_dir(prefix: Option<&Path>) -> Result<PathBuf> {
    Ok(match prefix {
        Some(prefix) => prefix.join("share/jupyter/kernels"),
        None => jupyter_data_dir()?.join("kernels"),
    })
}

/// Directories from `JUPYTER_PATH` that Jupyter searches before the user data directory and
/// that already hold a different `webaccel` kernelspec, which would shadow this install.
fn shadowing_specs(installed: &Path) -> Vec<PathBuf> {
    let Some(paths) = std::env::var_os("JUPYTER_PATH") else { return Vec::new() };
    std::env::split_paths(&paths)
        .map(|p| p.join("kernels").join(KERNEL_NAME))
        .filter(|p| p.join("kernel.json").is_file() && p.as_path() != installed)
        .collect()
}

pub fn install(prefix: Option<&Path>) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the webaccel executable's own path")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = kernels_dir(prefix)?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let spec = json!({
        "argv": [exe.display().to_string(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rhai",
        // Interrupts arrive as control messages, so a running cell can be stopped without a
        // signal reaching the browsers this process drives.
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    });
    let path = dir.join("kernel.json");
    // Write then rename, so Jupyter never reads a half-written spec.
    let tmp = dir.join("kernel.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    for shadow in shadowing_specs(&dir) {
        eprintln!(
            "warning: JUPYTER_PATH holds another webaccel kernelspec at {}, which Jupyter will use instead of this one",
            shadow.display()
        );
    }
    Ok(dir)
}

//! Finding and launching Chromium-family browsers over CDP, each in a fresh profile directory
//! that is removed when the browser is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::error::CdpError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use tokio::sync::watch;

use crate::error::{BrowserError, Result};

/// The browsers webaccel can drive over the DevTools protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrowserKind {
    /// Debian's Chromium (WebGPU through SwiftShader, wasm; its WebNN is not supported).
    Chromium,
    /// The Chromium build inside npm `@sparticuz/chromium`, whose WebNN works.
    HeadlessShell,
}

impl BrowserKind {
    pub const ALL: [BrowserKind; 2] = [BrowserKind::Chromium, BrowserKind::HeadlessShell];

    pub fn name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromium",
            BrowserKind::HeadlessShell => "headless-shell",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn env_var(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "WEBACCEL_CHROMIUM",
            BrowserKind::HeadlessShell => "WEBACCEL_HEADLESS_SHELL",
        }
    }

    /// Candidate executables, in the order they are tried. The environment variable, when
    /// set, is the only candidate: a user who names a path means that path.
    pub fn candidates(self) -> Vec<PathBuf> {
        if let Some(path) = std::env::var_os(self.env_var()) {
            return vec![PathBuf::from(path)];
        }
        match self {
            BrowserKind::Chromium => vec![
                PathBuf::from("/usr/lib/chromium/chromium"),
                PathBuf::from("/usr/bin/chromium"),
            ],
            BrowserKind::HeadlessShell => {
                let cache = std::env::var_os("WEBACCEL_CACHE")
                    .map(PathBuf::from)
                    .or_else(|| dirs::cache_dir().map(|d| d.join("webaccel")));
                cache.map(|c| vec![c.join("headless-shell/chromium")]).unwrap_or_default()
            }
        }
    }

    pub fn find(self) -> Result<PathBuf> {
        let searched = self.candidates();
        searched.iter().find(|p| p.is_file()).cloned().ok_or(BrowserError::NotFound {
            browser: self.name().to_string(),
            searched,
            env_var: self.env_var(),
        })
    }
}

/// A browser process driven over CDP. Dropping it kills the process (chromiumoxide spawns it
/// with kill-on-drop) and removes its profile directory.
pub struct LaunchedBrowser {
    pub kind: BrowserKind,
    pub executable: PathBuf,
    pub version: String,
    pub(crate) browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    alive: watch::Receiver<bool>,
    // Declared last so the directory is removed after the process is gone.
    profile: TempDir,
}

impl LaunchedBrowser {
    pub async fn launch(kind: BrowserKind) -> Result<Self> {
        let executable = kind.find()?;
        let launch_error = |reason: String| BrowserError::Launch {
            browser: kind.name().to_string(),
            path: executable.clone(),
            reason,
        };
        let profile = tempfile::Builder::new()
            .prefix("webaccel-profile-")
            .tempdir()
            .map_err(|e| launch_error(format!("cannot create a profile directory: {e}")))?;

        // chromiumoxide prefixes each key with `--` itself and merges `enable-features` values
        // into one switch (Chromium honours only one), so keys are given without dashes.
        let mut builder = BrowserConfig::builder()
            .chrome_executable(&executable)
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(30))
            // Model loads and long timed loops are bounded by our own per-call timeouts.
            .request_timeout(Duration::from_secs(3600))
            .arg("enable-unsafe-webgpu")
            .arg("disable-component-update")
            .arg("disable-quic")
            .arg("disable-domain-reliability")
            .arg("no-default-browser-check");
        // Chromium 156 needs the new headless mode for WebGPU; the headless-shell build is the
        // old headless mode itself and takes the default `--headless`.
        if kind == BrowserKind::Chromium {
            builder = builder.new_headless_mode();
        }
        if running_as_root() {
            builder = builder.no_sandbox();
        }
        if kind == BrowserKind::HeadlessShell {
            builder = builder.arg(("enable-features", "WebMachineLearningNeuralNetwork"));
        }
        let config = builder.build().map_err(launch_error)?;

        let (browser, mut handler) =
            Browser::launch(config).await.map_err(|e| launch_error(e.to_string()))?;
        let (alive_tx, alive) = watch::channel(true);
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                match event {
                    // Events this chromiumoxide version cannot parse are not fatal.
                    Err(CdpError::InvalidMessage(..)) => continue,
                    Err(e) => {
                        tracing::debug!("CDP connection ended: {e}");
                        break;
                    }
                    Ok(()) => {}
                }
            }
            let _ = alive_tx.send(false);
        });
        let version = match browser.version().await {
            Ok(v) => v.product,
            Err(e) => return Err(launch_error(format!("no answer to Browser.getVersion: {e}"))),
        };
        tracing::debug!(browser = kind.name(), %version, "launched");
        Ok(LaunchedBrowser { kind, executable, version, browser, handler, alive, profile })
    }

    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    /// A receiver that turns false when the CDP connection ends (the process died or closed).
    pub fn liveness(&self) -> watch::Receiver<bool> {
        self.alive.clone()
    }

    /// Closes the browser politely, then makes sure the process is gone.
    pub async fn shutdown(mut self) {
        if self.is_alive() {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.close()).await;
        }
        let waited = tokio::time::timeout(Duration::from_secs(5), self.browser.wait()).await;
        if waited.is_err() {
            let _ = self.browser.kill().await;
        }
        self.handler.abort();
    }
}

impl Drop for LaunchedBrowser {
    fn drop(&mut self) {
        // The process is killed by chromiumoxide's kill-on-drop child; make sure of it even
        // when no runtime is left to reap it, so no orphan holds the profile directory.
        if let Some(child) = self.browser.get_mut_child() {
            if let Ok(None) = child.try_wait() {
                let _ = child.as_mut_inner().start_kill();
            }
        }
        self.handler.abort();
    }
}

fn running_as_root() -> bool {
    // Chromium refuses to start as root with its sandbox on.
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

impl LaunchedBrowser {
    /// The browser's main process id, while it runs.
    pub fn pid(&mut self) -> Option<u32> {
        self.browser.get_mut_child().and_then(|c| c.as_mut_inner().id())
    }
}

//! Finding and launching browsers, each in a fresh profile directory that is removed when the
//! browser is dropped: the Chromium family driven over CDP, Firefox over WebDriver BiDi.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::process::Stdio;

use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::Browser;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::bidi::Bidi;
use crate::error::{BrowserError, Result};

/// The browsers webaccel drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrowserKind {
    /// Google Chrome, where installed.
    Chrome,
    /// Microsoft Edge, where installed.
    Edge,
    /// Debian's Chromium (WebGPU through SwiftShader, wasm; its WebNN is not supported).
    Chromium,
    /// The Chromium build inside npm `@sparticuz/chromium`, whose WebNN works.
    HeadlessShell,
    /// Firefox (Debian's ESR here): wasm, and WebGPU through Vulkan (lavapipe without a GPU).
    Firefox,
}

/// How webaccel controls a browser (runs and tensors go over the page's data channel either
/// way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlProtocol {
    Cdp,
    WebDriverBidi,
}

impl BrowserKind {
    pub const ALL: [BrowserKind; 5] = [
        BrowserKind::Chrome,
        BrowserKind::Edge,
        BrowserKind::Chromium,
        BrowserKind::HeadlessShell,
        BrowserKind::Firefox,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BrowserKind::Chrome => "chrome",
            BrowserKind::Edge => "edge",
            BrowserKind::Chromium => "chromium",
            BrowserKind::HeadlessShell => "headless-shell",
            BrowserKind::Firefox => "firefox",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn protocol(self) -> ControlProtocol {
        match self {
            BrowserKind::Firefox => ControlProtocol::WebDriverBidi,
            _ => ControlProtocol::Cdp,
        }
    }

    pub fn env_var(self) -> &'static str {
        match self {
            BrowserKind::Chrome => "WEBACCEL_CHROME",
            BrowserKind::Edge => "WEBACCEL_EDGE",
            BrowserKind::Chromium => "WEBACCEL_CHROMIUM",
            BrowserKind::HeadlessShell => "WEBACCEL_HEADLESS_SHELL",
            BrowserKind::Firefox => "WEBACCEL_FIREFOX",
        }
    }

    /// Candidate executables, in the order they are tried: the usual install paths on Linux,
    /// macOS and Windows. The environment variable, when set, is the only candidate: a user
    /// who names a path means that path.
    pub fn candidates(self) -> Vec<PathBuf> {
        if let Some(path) = std::env::var_os(self.env_var()) {
            return vec![PathBuf::from(path)];
        }
        let paths: &[&str] = match self {
            BrowserKind::Chrome => &[
                "/opt/google/chrome/chrome",
                "/usr/bin/google-chrome-stable",
                "/usr/bin/google-chrome",
                "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                r"C:\Program Files\Google\Chrome\Application\chrome.exe",
                r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe",
            ],
            BrowserKind::Edge => &[
                "/opt/microsoft/msedge/msedge",
                "/usr/bin/microsoft-edge-stable",
                "/usr/bin/microsoft-edge",
                "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
                r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
                r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
            ],
            BrowserKind::Chromium => &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
            BrowserKind::HeadlessShell => {
                let cache = std::env::var_os("WEBACCEL_CACHE")
                    .map(PathBuf::from)
                    .or_else(|| dirs::cache_dir().map(|d| d.join("webaccel")));
                return cache.map(|c| vec![c.join("headless-shell/chromium")]).unwrap_or_default();
            }
            BrowserKind::Firefox => &[
                "/usr/bin/firefox-esr",
                "/usr/bin/firefox",
                "/Applications/Firefox.app/Contents/MacOS/firefox",
                r"C:\Program Files\Mozilla Firefox\firefox.exe",
            ],
        };
        paths.iter().map(PathBuf::from).collect()
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

/// Chromium switches for measuring, not browsing: no background traffic (this machine's
/// network is closed, and stray requests add noise), no throttling of a page that is not
/// visible, no first-run or crash-reporting side effects.
pub(crate) const CHROMIUM_SWITCHES: &[&str] = &[
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--disable-hang-monitor",
    "--disable-popup-blocking",
    "--disable-prompt-on-repost",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-ipc-flooding-protection",
    "--metrics-recording-only",
    "--password-store=basic",
    // Chromium's own switch name: store passwords in the profile, not the OS keychain. It
    // touches nothing that is measured.
    "--use-mock-keychain",
    "--enable-unsafe-webgpu",
    // Without the feature `navigator.ml` is absent; with it, each build's real WebNN answer
    // (a context, or its exact error) is what gets measured. Chromium honours one
    // --enable-features switch only, so every feature goes here.
    "--enable-features=WebMachineLearningNeuralNetwork",
];

/// Why a switch a user passes in `flags` is refused, or None when it may be passed. Some
/// switches make the browser launch another program (a "command prefix" or launcher runs
/// whatever it names with the user's privileges), take over the control connection webaccel
/// drives it through, or move the profile webaccel creates and removes.
pub fn refused_switch(flag: &str) -> Option<&'static str> {
    let name = flag.split('=').next().unwrap_or(flag);
    const LAUNCHERS: &[&str] = &[
        "--renderer-cmd-prefix",
        "--gpu-launcher",
        "--utility-cmd-prefix",
        "--browser-subprocess-path",
        "--zygote-cmd-prefix",
        "--ppapi-plugin-launcher",
        "--plugin-launcher",
    ];
    if LAUNCHERS.contains(&name) {
        return Some("it makes the browser launch another program");
    }
    if name.starts_with("--remote-debugging-") || name == "--remote-allow-origins" || name == "--marionette" {
        return Some("it takes over the control connection webaccel drives the browser through");
    }
    if ["--user-data-dir", "--profile", "--profile-directory"].contains(&name) {
        return Some("webaccel creates and removes the profile itself; use the profile_dir option to keep one");
    }
    if flag.strip_prefix("--pref=").is_some_and(|pref| pref.starts_with("remote.")) {
        return Some("it changes Firefox's remote agent, the control connection webaccel drives it through");
    }
    None
}

/// Firefox preferences for measuring, written to the profile's `user.js`. Firefox's remote
/// agent already sets its recommended automation prefs (no updates, telemetry or first-run
/// pages); these add WebGPU, which Firefox ESR keeps behind a pref and a GPU blocklist
/// (lavapipe, a CPU Vulkan driver, is on it).
pub(crate) const FIREFOX_PREFS: &[(&str, &str)] = &[
    ("dom.webgpu.enabled", "true"),
    ("gfx.webgpu.ignore-blocklist", "true"),
    // Timers in a page nobody looks at would otherwise be clamped.
    ("dom.min_background_timeout_value", "0"),
];

/// A browser webaccel drives: a process it spawned itself, in its own process group, so that
/// dropping it kills the whole tree (zygotes, GPU and renderer or content processes), not just
/// the main process, and removes its profile directory after the processes are gone; or a
/// browser on a Selenium Grid node (`grid.rs`), whose session is deleted on the hub.
pub struct LaunchedBrowser {
    pub kind: BrowserKind,
    /// How rows name it: the kind's name, or `grid:<slot>`.
    pub name: String,
    /// The executable, or for a remote browser the node's URI.
    pub executable: PathBuf,
    pub version: String,
    /// Every switch it was started with, in order, and for Firefox the preferences set in its
    /// profile as `--pref=name=value` (part of the environment's fingerprint).
    pub flags: Vec<String>,
    pub(crate) control: Control,
    pub(crate) alive: watch::Receiver<bool>,
    pub(crate) host: Host,
}

/// Where the browser runs.
pub(crate) enum Host {
    Local(LocalProcess),
    Remote(crate::grid::GridSession),
}

/// A browser process on this machine, killed with its group and descendants on drop.
pub(crate) struct LocalProcess {
    child: tokio::process::Child,
    pid: u32,
    profile: Profile,
}

/// The browser's control connection.
pub(crate) enum Control {
    Cdp { browser: Box<Browser>, handler: tokio::task::JoinHandle<()> },
    Bidi(Arc<Bidi>),
}

/// Where a browser keeps its profile: a fresh directory removed when it closes (the default),
/// or a kept one the user names, so that caches (V8 code, Dawn's shader cache) carry over to
/// the next browser started on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ProfileChoice {
    #[default]
    Fresh,
    Kept(PathBuf),
}

enum Profile {
    Fresh(TempDir),
    Kept(PathBuf),
}

impl Profile {
    fn path(&self) -> &Path {
        match self {
            Profile::Fresh(dir) => dir.path(),
            Profile::Kept(path) => path,
        }
    }
}

impl LaunchedBrowser {
    /// Launches `kind` with webaccel's switches plus `extra` ones (each `--name` or
    /// `--name=value`; for Firefox, `--pref=name=value` sets a preference instead).
    pub async fn launch(kind: BrowserKind, extra: &[String], profile: &ProfileChoice) -> Result<Self> {
        let executable = kind.find()?;
        let launch_error = |reason: String| BrowserError::Launch {
            browser: kind.name().to_string(),
            path: executable.clone(),
            reason,
        };
        if let Some(bad) = extra.iter().find(|f| !f.starts_with("--")) {
            return Err(launch_error(format!("extra flag {bad:?} must start with --")));
        }
        if let Some((flag, why)) = extra.iter().find_map(|f| refused_switch(f).map(|why| (f, why))) {
            return Err(launch_error(format!("the switch {flag} is refused: {why}")));
        }
        let profile = match profile {
            ProfileChoice::Fresh => Profile::Fresh(
                tempfile::Builder::new()
                    .prefix("webaccel-profile-")
                    .tempdir()
                    .map_err(|e| launch_error(format!("cannot create a profile directory: {e}")))?,
            ),
            ProfileChoice::Kept(path) if !path.is_absolute() => {
                return Err(launch_error(format!(
                    "the profile directory {} is relative, so where it lands depends on the process's working \
                     directory; give an absolute path",
                    path.display()
                )))
            }
            ProfileChoice::Kept(path) => {
                std::fs::create_dir_all(path).map_err(|e| {
                    launch_error(format!("cannot create the profile directory {}: {e}", path.display()))
                })?;
                Profile::Kept(path.clone())
            }
        };

        let (args, flags) = match kind.protocol() {
            ControlProtocol::Cdp => chromium_arguments(kind, extra, profile.path()),
            ControlProtocol::WebDriverBidi => {
                firefox_arguments(extra, profile.path()).map_err(|e| launch_error(e.to_string()))?
            }
        };

        let mut command = tokio::process::Command::new(&executable);
        command
            .args(&args)
            // Crash reports and other per-user state go inside the profile, not ~/.config.
            .env("XDG_CONFIG_HOME", profile.path().join("config"))
            .env("XDG_CACHE_HOME", profile.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if kind == BrowserKind::Firefox {
            // No crash-reporter dialog, and no waiting on one, when a content process dies.
            command.env("MOZ_CRASHREPORTER_DISABLE", "1");
        }
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            command.pre_exec(|| {
                // If webaccel itself is killed, the browser follows instead of lingering.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| launch_error(e.to_string()))?;
        let pid = child.id().ok_or_else(|| launch_error("the process exited at once".into()))?;

        let stderr = child.stderr.take().expect("stderr is piped");
        let (banner, what) = match kind.protocol() {
            ControlProtocol::Cdp => ("DevTools listening on ", "DevTools"),
            ControlProtocol::WebDriverBidi => ("WebDriver BiDi listening on ", "WebDriver BiDi"),
        };
        let ws_url = match tokio::time::timeout(LAUNCH_TIMEOUT, endpoint_url(stderr, banner)).await {
            Ok(Ok(url)) => url,
            Ok(Err(output)) => {
                kill_group(pid);
                return Err(launch_error(format!("it exited before opening {what}; it said: {output}")));
            }
            Err(_) => {
                kill_group(pid);
                return Err(launch_error(format!("no {what} endpoint within {} s", LAUNCH_TIMEOUT.as_secs())));
            }
        };
        let connect = async {
            match kind.protocol() {
                ControlProtocol::Cdp => connect_cdp(ws_url).await,
                ControlProtocol::WebDriverBidi => connect_bidi(&ws_url).await,
            }
        };
        let connected = tokio::time::timeout(LAUNCH_TIMEOUT, connect).await.unwrap_or_else(|_| {
            Err(format!("its {what} endpoint did not answer within {} s", LAUNCH_TIMEOUT.as_secs()))
        });
        let (control, alive, version) = match connected {
            Ok(connected) => connected,
            Err(reason) => {
                kill_group(pid);
                return Err(launch_error(reason));
            }
        };
        tracing::debug!(browser = kind.name(), %version, pid, "launched");
        let host = Host::Local(LocalProcess { child, pid, profile });
        Ok(LaunchedBrowser { kind, name: kind.name().to_string(), executable, flags, version, control, alive, host })
    }

    /// The profile directory of a local browser.
    pub fn profile_dir(&self) -> Option<&Path> {
        match &self.host {
            Host::Local(local) => Some(local.profile.path()),
            Host::Remote(_) => None,
        }
    }

    /// A local browser's main process id (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        match &self.host {
            Host::Local(local) => Some(local.pid),
            Host::Remote(_) => None,
        }
    }

    /// The Grid node a remote browser runs on.
    pub fn node(&self) -> Option<&crate::grid::Slot> {
        self.grid_session().map(|session| &session.slot)
    }

    pub(crate) fn grid_session(&self) -> Option<&crate::grid::GridSession> {
        match &self.host {
            Host::Local(_) => None,
            Host::Remote(session) => Some(session),
        }
    }

    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    /// A receiver that turns false when the control connection ends (the process died or closed).
    pub fn liveness(&self) -> watch::Receiver<bool> {
        self.alive.clone()
    }

    /// Closes the browser. A fresh profile is thrown away, so the browser is simply killed
    /// (fast: Jupyter gives a kernel a few seconds to shut down before killing it, and then
    /// nothing would clean up). A kept profile is meant to carry its caches to the next
    /// browser, so that browser is asked to close and flush first.
    pub async fn shutdown(mut self) {
        if let Host::Remote(session) = &self.host {
            session.delete().await;
            return;
        }
        let kept = matches!(&self.host, Host::Local(LocalProcess { profile: Profile::Kept(_), .. }));
        if kept && self.is_alive() {
            let close = async {
                match &mut self.control {
                    Control::Cdp { browser, .. } => {
                        let _ = browser.close().await;
                    }
                    Control::Bidi(bidi) => {
                        let _ = bidi.command("browser.close", serde_json::json!({})).await;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
            if let Host::Local(local) = &mut self.host {
                if tokio::time::timeout(Duration::from_secs(5), local.child.wait()).await.is_err() {
                    tracing::debug!(pid = local.pid, "browser did not close in time; killing it");
                }
            }
        }
        // Drop kills what is left of the group, waits for it, and removes a fresh profile.
    }
}

impl Drop for LaunchedBrowser {
    fn drop(&mut self) {
        if let Control::Cdp { handler, .. } = &self.control {
            handler.abort();
        }
        // Then the host goes: a local process tree is killed, a Grid session deleted.
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        // Only what this browser started is killed: its process group, and its descendants
        // that left the group (found before the group dies and they are re-parented). Nothing
        // is chosen by what its command line says, so no other process can be hit, whatever
        // the profile path is called.
        let descendants = descendants_of(self.pid as i32);
        kill_group(self.pid);
        for &pid in &descendants {
            // SAFETY: plain syscall on a pid we just read as this browser's descendant.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
        // Wait (briefly) for every process to be gone, then remove a fresh profile, retrying:
        // a process that was still flushing its caches can race the first removal.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (group_exists(self.pid) || descendants.iter().any(|&pid| running(pid)))
            && std::time::Instant::now() < deadline
        {
            let _ = self.child.try_wait();
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.profile, Profile::Kept(_)) {
            return;
        }
        let profile = self.profile.path().to_path_buf();
        tracing::debug!(profile = %profile.display(), "browser gone; removing its profile");
        for _ in 0..10 {
            match std::fs::remove_dir_all(&profile) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => {
                    tracing::debug!("retrying removal of {}: {e}", profile.display());
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// A process's state and parent from `/proc/<pid>/stat` (after the command name, which may hold
/// spaces and parentheses).
fn stat_of(pid: i32) -> Option<(String, i32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Every process below `root` in the parent tree.
fn descendants_of(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let parents: Vec<(i32, i32)> = entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            Some((pid, stat_of(pid)?.1))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is a live process (not a zombie).
fn running(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(state, _, _)| state != "Z" && state != "X")
}

/// Processes whose command line mentions `path` (a profile directory): only asked, to know
/// whether a stale profile is still in use; never a reason to kill.
fn pids_mentioning(path: &Path) -> Vec<i32> {
    let needle = path.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline.windows(needle.len()).any(|w| w == needle).then_some(pid)
        })
        .collect()
}

/// Removes profile directories that earlier webaccel processes could not (they were killed
/// outright): any `webaccel-profile-*` older than `min_age` that no running process uses.
pub fn sweep_stale_profiles(min_age: Duration) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry.file_name().to_str().is_some_and(|n| n.starts_with("webaccel-profile-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if is_ours && old && pids_mentioning(&path).is_empty() {
            tracing::debug!("removing stale profile {}", path.display());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium's command line: webaccel's switches, the headless mode, `extra`, the profile.
/// Returns the arguments and the switches to record.
fn chromium_arguments(kind: BrowserKind, extra: &[String], profile: &Path) -> (Vec<String>, Vec<String>) {
    let mut flags: Vec<String> = CHROMIUM_SWITCHES.iter().map(|s| s.to_string()).collect();
    // Chromium 156 (and Chrome, Edge) need the new headless mode for WebGPU; the
    // headless-shell build is the old headless mode itself.
    flags.push(if kind == BrowserKind::HeadlessShell { "--headless" } else { "--headless=new" }.to_string());
    if running_as_root() {
        // Chromium refuses to start as root with its sandbox on.
        flags.push("--no-sandbox".to_string());
    }
    flags.extend(extra.iter().cloned());
    let mut args = flags.clone();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push("about:blank".to_string());
    (args, flags)
}

/// Firefox's command line, with its preferences written to the profile's `user.js`: webaccel's
/// prefs, then each `--pref=name=value` of `extra` (a later one wins); other `extra` switches
/// are passed on. Returns the arguments and what to record (switches, then prefs).
fn firefox_arguments(extra: &[String], profile: &Path) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let mut prefs: Vec<(String, String)> =
        FIREFOX_PREFS.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    let mut flags: Vec<String> =
        ["--headless", "--no-remote", "--remote-debugging-port=0"].iter().map(|s| s.to_string()).collect();
    for flag in extra {
        match flag.strip_prefix("--pref=").and_then(|p| p.split_once('=')) {
            Some((name, value)) => prefs.push((name.to_string(), value.to_string())),
            None => flags.push(flag.clone()),
        }
    }
    let user_js: String = prefs
        .iter()
        .map(|(name, value)| format!("user_pref({}, {});\n", json_string(name), pref_value(value)))
        .collect();
    std::fs::write(profile.join("user.js"), user_js)?;
    let mut args = flags.clone();
    args.extend(["--profile".to_string(), profile.display().to_string()]);
    flags.extend(prefs.iter().map(|(name, value)| format!("--pref={name}={value}")));
    Ok((args, flags))
}

/// A pref's value as `user.js` spells it: booleans and integers bare, anything else a string.
fn pref_value(value: &str) -> String {
    if value == "true" || value == "false" || value.parse::<i64>().is_ok() {
        value.to_string()
    } else {
        json_string(value)
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Connects chromiumoxide to the DevTools endpoint: the control, its liveness and the
/// browser's product version.
pub(crate) async fn connect_cdp(
    ws_url: String,
) -> std::result::Result<(Control, watch::Receiver<bool>, String), String> {
    let config = HandlerConfig {
        // Model loads and long timed loops are bounded by the session's own timeouts.
        request_timeout: Duration::from_secs(3600),
        ..HandlerConfig::default()
    };
    let (browser, mut handler) =
        Browser::connect_with_config(ws_url, config).await.map_err(|e| format!("cannot connect over DevTools: {e}"))?;
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
        Err(e) => {
            handler.abort();
            return Err(format!("no answer to Browser.getVersion: {e}"));
        }
    };
    Ok((Control::Cdp { browser: Box::new(browser), handler }, alive, version))
}

/// Opens a WebDriver BiDi session on Firefox's endpoint.
async fn connect_bidi(ws_url: &str) -> std::result::Result<(Control, watch::Receiver<bool>, String), String> {
    let bidi = Bidi::connect(ws_url).await.map_err(|e| format!("cannot start a WebDriver BiDi session: {e}"))?;
    let version = format!("Firefox/{}", bidi.browser_version);
    let alive = bidi.liveness();
    Ok((Control::Bidi(Arc::new(bidi)), alive, version))
}

/// Reads the browser's stderr until it prints `banner` and its WebSocket URL, then keeps
/// draining it in the background (a full pipe would block the browser). On exit, returns what
/// it printed.
async fn endpoint_url(stderr: tokio::process::ChildStderr, banner: &str) -> std::result::Result<String, String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = line.trim().strip_prefix(banner) {
            let url = url.trim().to_string();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::trace!(target: "webaccel::browser_stderr", "{line}");
                }
            });
            return Ok(url);
        }
        if seen.len() < 20 {
            seen.push(line);
        }
    }
    Err(seen.join("\n"))
}

fn kill_group(pgid: u32) {
    // SAFETY: plain syscall; a negative pid addresses the process group.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

/// Whether any process of the group is still running. Zombies do not count: killed helpers
/// are reparented to init, which may reap them late, and they hold no files.
fn group_exists(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { return false };
        stat_of(pid).is_some_and(|(state, _, pgrp)| pgrp == pgid && state != "Z" && state != "X")
    })
}

fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

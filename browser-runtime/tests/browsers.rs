//! Against real Debian Chromium and Firefox ESR: capabilities, a real model run with binary
//! tensors, a killed browser, and clean-up. One test function per browser, so each starts once
//! per section that needs it.

use std::time::{Duration, Instant};

use webaccel_browser_runtime::{
    default_ort_dir, BrowserError, BrowserKey, BrowserKind, BrowserPool, LoadRequest, PageSettings, Platform,
    RunOptions, Tensor,
};

#[path = "../examples/common/mod.rs"]
mod common;

use common::minilm_path;
use webaccel_browser_runtime::channel::LARGE_BODY;

/// "[CLS] hello world [SEP]" in the MiniLM vocabulary.
fn inputs() -> Vec<Tensor> {
    common::minilm_inputs(&[101, 7592, 2088, 102], 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_capabilities_runs_crash_and_cleanup() {
    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let browser = pool.get(&BrowserKey::plain(BrowserKind::Chromium)).await.expect("Debian Chromium launches");
    let caps = &browser.capabilities;

    // What this machine's Chromium really has: SwiftShader WebGPU, no WebNN, isolated wasm.
    assert!(caps.version.contains("Chrome/"), "{}", caps.version);
    assert!(caps.page.webgpu.available, "{:?}", caps.page.webgpu.error);
    assert!(caps.page.webgpu.limits.get("maxBufferSize").and_then(|n| n.as_u64()).unwrap_or(0) > 0);
    let cpu = &caps.page.webnn["cpu"];
    assert!(!cpu.available);
    assert!(cpu.error.as_deref().unwrap_or("").starts_with("NotSupportedError"), "{:?}", cpu.error);
    drop(browser);
    runs_crash_and_cleanup(&pool, BrowserKind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_capabilities_runs_crash_and_cleanup() {
    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let browser = pool.get(&BrowserKey::plain(BrowserKind::Firefox)).await.expect("Firefox ESR launches");
    let caps = &browser.capabilities;

    // What this machine's Firefox really has, over WebDriver BiDi: WebGPU through lavapipe
    // (its prefs set by webaccel), no navigator.ml at all.
    assert!(caps.version.starts_with("Firefox/"), "{}", caps.version);
    assert!(caps.page.user_agent.contains("Firefox/"), "{}", caps.page.user_agent);
    assert!(caps.page.webgpu.available, "{:?}", caps.page.webgpu.error);
    assert!(caps.page.webgpu.limits.get("maxBufferSize").and_then(|n| n.as_u64()).unwrap_or(0) > 0);
    let cpu = &caps.page.webnn["cpu"];
    assert!(!cpu.available);
    assert!(cpu.error.as_deref().unwrap_or("").contains("navigator.ml"), "{:?}", cpu.error);
    // The prefs webaccel set are recorded with the switches.
    assert!(
        browser.session.flags().iter().any(|f| f == "--pref=dom.webgpu.enabled=true"),
        "{:?}",
        browser.session.flags()
    );

    // A crashed tab while the browser lives on: Firefox's web content processes are killed
    // during a long run. The page's data channel closes, the call fails saying so, and the
    // session is retired (the pool replaces it).
    browser.session.load("minilm", &minilm_path(), &LoadRequest::new(Platform::Wasm)).await.unwrap();
    let main = pid_of_profile(browser.session.profile_dir().expect("a local browser"))
        .expect("Firefox's main process is visible");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let tabs = web_content_processes(main);
        tabs.iter().for_each(|&pid| kill_9(pid));
        tabs.len()
    });
    let started = Instant::now();
    let result = browser.session.run("minilm", &inputs(), &long_run()).await;
    assert!(killer.await.unwrap() > 0, "no web content process found under {main}");
    assert!(matches!(result, Err(BrowserError::ChannelClosed { .. })), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!browser.session.is_alive());
    assert!(
        pid_of_profile(browser.session.profile_dir().expect("a local browser")).is_some(),
        "the browser itself should have lived on"
    );
    drop(browser);
    runs_crash_and_cleanup(&pool, BrowserKind::Firefox).await;

    // A user's `--pref=` reaches the profile and overrides webaccel's own: WebGPU switched off.
    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let key = BrowserKey::new(BrowserKind::Firefox, vec!["--pref=dom.webgpu.enabled=false".into()], Default::default());
    let off = pool.get(&key).await.unwrap();
    assert!(!off.capabilities.page.webgpu.available);
    assert!(
        off.capabilities.page.webgpu.error.as_deref().unwrap_or("").contains("navigator.gpu"),
        "{:?}",
        off.capabilities.page.webgpu.error
    );
    drop(off);
    pool.shutdown().await;
}

/// A run long enough to be killed in the middle of (its limit raised past what it needs, so the
/// page does not refuse it up front).
fn long_run() -> RunOptions {
    RunOptions { limit: Duration::from_secs(3600), ..RunOptions::timed(0, 50_000) }
}

/// The same for every browser: isolation, a real model on wasm, a page error, the data
/// channel, a killed browser, a fresh one, and nothing left behind.
async fn runs_crash_and_cleanup(pool: &std::sync::Arc<BrowserPool>, kind: BrowserKind) {
    let browser = pool.get(&BrowserKey::plain(kind)).await.unwrap();
    let caps = &browser.capabilities;
    assert!(caps.page.cross_origin_isolated, "COOP/COEP headers are not taking effect");
    assert!(caps.page.wasm.simd);
    assert!(caps.page.wasm.threads.available, "{:?}", caps.page.wasm.threads.error);

    // A real model on wasm: outputs come back as binary, with the shape the graph gives.
    let model = minilm_path();
    let request = LoadRequest { placement: true, ..LoadRequest::new(Platform::Wasm) };
    let load = browser.session.load("minilm", &model, &request).await.unwrap();
    assert!(!load.cached && load.session_create_ms.is_some_and(|ms| ms > 0.0));
    assert_eq!(load.input_names, ["input_ids", "attention_mask", "token_type_ids"]);
    // ORT's placement report: every node of a wasm session runs on the CPU provider.
    let placed = load.placement.clone().expect("ORT reported where it placed the nodes");
    assert!(placed.get("CPUExecutionProvider").is_some_and(|&n| n > 10), "{placed:?}");
    // A second load creates nothing, so it reports no creation time (not the first one's).
    let again = browser.session.load("minilm", &model, &request).await.unwrap();
    assert!(again.cached && again.session_create_ms.is_none());
    let out = browser.session.run("minilm", &inputs(), &RunOptions::timed(1, 3)).await.unwrap();
    assert_eq!(out.run_ms.len(), 3);
    assert!(out.first_run_ms.is_some_and(|ms| ms > 0.0) && out.run_ms.iter().all(|&t| t > 0.0));
    assert_eq!(out.warmup_runs, 1);
    // The session's first run happened in the call before: this one did not measure one.
    let later = browser.session.run("minilm", &inputs(), &RunOptions::timed(0, 2)).await.unwrap();
    assert_eq!((later.first_run_ms, later.precompile_ms, later.warmup_runs), (None, None, 0));
    let hidden = out.outputs.iter().find(|t| t.name == "last_hidden_state").unwrap();
    assert_eq!(hidden.dims, [1, 4, 384]);
    let values = hidden.to_f32().unwrap();
    assert!(values.iter().all(|v| v.is_finite()) && values.iter().any(|v| *v != 0.0));

    // A wrong input is the page's own error, not a hang.
    let bad = vec![Tensor::from_i64("input_ids", vec![1, 4], &[101, 7592, 2088, 102])];
    match browser.session.run("minilm", &bad, &RunOptions::timed(0, 1)).await {
        Err(BrowserError::Page { message, .. }) => assert!(message.contains("input"), "{message}"),
        other => panic!("expected a page error, got {other:?}", other = other.map(|o| o.run_ms)),
    }

    // The data channel moves bodies byte for byte: small ones inside its frames, large ones as
    // HTTP bodies parked on the asset server.
    for size in [0, 4096, LARGE_BODY + 1, 3 * LARGE_BODY + 5] {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        assert!(browser.session.echo(body.clone()).await.unwrap() == body, "echo of {size} bytes differs");
    }

    // Kill the browser during a long run: the call fails promptly with Crashed.
    let profile = browser.session.profile_dir().expect("a local browser").to_path_buf();
    let pid = pid_of_profile(&profile).expect("the browser's main process is visible");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        kill_9(pid);
    });
    let started = Instant::now();
    let result = browser.session.run("minilm", &inputs(), &long_run()).await;
    killer.await.unwrap();
    assert!(matches!(result, Err(BrowserError::Crashed { .. })), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!browser.session.is_alive());
    drop(browser);

    // The next call gets a fresh browser with a new profile; the dead one's profile is gone.
    let fresh = pool.get(&BrowserKey::plain(kind)).await.unwrap();
    assert!(fresh.session.is_alive());
    let fresh_profile = fresh.session.profile_dir().expect("a local browser").to_path_buf();
    assert_ne!(fresh_profile, profile);
    assert!(!profile.exists(), "the crashed browser's profile directory was left behind");
    drop(fresh);

    pool.shutdown().await;
    assert!(!fresh_profile.exists(), "shutdown left the profile directory behind");
    assert!(pid_of_profile(&fresh_profile).is_none(), "shutdown left the browser running");
}

/// The browser main process whose command line names this profile directory.
/// Chromium names it as `--user-data-dir=PATH`, Firefox as `--profile PATH`; their helper
/// processes carry `--type=` (Chromium) or `-contentproc` (Firefox).
fn pid_of_profile(profile: &std::path::Path) -> Option<i32> {
    let chromium = format!("--user-data-dir={}", profile.display());
    let firefox = profile.display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let names = args.contains(&chromium.as_bytes()) || args.contains(&firefox.as_bytes());
        let helper = args.iter().any(|a| a.starts_with(b"--type=") || *a == b"-contentproc");
        let is_main = names && !helper;
        is_main.then_some(pid)
    })
}

/// Firefox's web content processes under `root`: they run tabs, and carry `-contentproc
/// -isForBrowser` (they are children of its fork server, not of the main process).
fn web_content_processes(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    // Forked from the fork server, they rewrite their command line as one space-separated
    // string, so it is searched as text.
    tree.into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.contains("-contentproc") && cmdline.contains("-isForBrowser")
        })
        .collect()
}

fn kill_9(pid: i32) {
    // std has no kill(2); the kill command is always there on Linux.
    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
}

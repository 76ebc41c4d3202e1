//! Benchmark: does a kept profile directory make the next browser's first run faster? Each
//! round starts a browser, loads MiniLM on webgpu and wasm, times the first run (no precompile),
//! and closes it. The kept-profile browsers share one directory, so the second and later ones
//! inherit its caches (V8's wasm code cache, Dawn's shader cache); the fresh-profile browsers
//! start empty every time. Both arms alternate in one run.
//!
//!     source scripts/env.sh && cargo run -p webaccel-browser-runtime --example profile_reuse

use std::path::Path;
use std::sync::Arc;

use webaccel_browser_runtime::{
    default_ort_dir, AssetServer, BrowserKind, BrowserSession, LoadRequest, PageSettings, Platform, ProfileChoice,
    RunOptions,
};

const ROUNDS: usize = 3;

mod common;

/// (session create ms, first run ms) for one platform in a new browser on `profile`.
async fn first_run(assets: &Arc<AssetServer>, model: &Path, profile: &ProfileChoice, platform: Platform) -> (f64, f64) {
    let session = BrowserSession::open(BrowserKind::Chromium, &[], profile, assets.clone(), PageSettings::default())
        .await
        .expect("launch chromium");
    let request = LoadRequest::new(platform);
    let load = session.load("m", model, &request).await.expect("load");
    let run = session
        .run("m", &common::minilm_inputs(&[101, 1037, 2158, 2003, 5983, 2833, 1012, 102], 8), &RunOptions::timed(0, 1))
        .await
        .expect("run");
    session.shutdown().await;
    // A fresh session in a fresh page: both were measured by this call.
    (load.session_create_ms.expect("a new session's creation"), run.first_run_ms.expect("a new session's first run"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let model = common::minilm_path();
    let assets = Arc::new(AssetServer::start(&default_ort_dir()).await.expect("asset server"));
    let kept_dir = tempfile::tempdir().expect("temp dir");
    let kept = ProfileChoice::Kept(kept_dir.path().join("profile"));

    println!("all-MiniLM-L6-v2, 8 tokens, Debian Chromium; first run after load, no precompile");
    println!("{:<8}{:<7}{:<22}{:>12}{:>14}", "round", "", "profile", "create ms", "first run ms");
    for platform in [Platform::Webgpu, Platform::Wasm] {
        for round in 0..ROUNDS {
            for (label, profile) in [("fresh", &ProfileChoice::Fresh), ("kept", &kept)] {
                let (create, first) = first_run(&assets, &model, profile, platform).await;
                println!("{:<8}{:<7}{:<22}{create:>12.1}{first:>14.1}", round, platform.name(), label);
            }
        }
    }
    println!("(the kept profile's round 0 starts empty too; rounds 1+ inherit its caches)");
}

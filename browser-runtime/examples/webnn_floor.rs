//! Benchmark: what a WebNN inference costs before any model, against MiniLM on webnn and on
//! wasm in the same browser (headless-shell), side by side in one run. The floor is a
//! one-element graph run the way ORT's webnn EP runs a session: write the input, dispatch,
//! read the output back. WebNN computes outside the renderer, so that much of every WebNN
//! latency is process hops, not the model.
//!
//!     source scripts/env.sh && cargo run --release -p webaccel-browser-runtime --example webnn_floor

use std::collections::BTreeMap;
use std::time::Duration;

use webaccel_browser_runtime::{
    default_ort_dir, BrowserKey, BrowserKind, BrowserPool, LoadRequest, PageSettings, Platform, RunOptions,
};

mod common;

use common::{median, p90};

const RUNS: u32 = 200;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let model = common::minilm_path();
    let inputs = common::eating_food();
    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let browser = pool.get(&BrowserKey::plain(BrowserKind::HeadlessShell)).await.expect("launch headless-shell");
    let session = &browser.session;

    let floor = session.webnn_floor("cpu", 50, RUNS).await.expect("one-element WebNN graph");
    let mut options = RunOptions::timed(10, RUNS);
    options.warmup_min = Duration::from_secs(5);
    let fixed = BTreeMap::from([("batch".to_string(), 1), ("sequence".to_string(), 18)]);
    let mut rows = vec![("webnn floor (1 element)".to_string(), floor)];
    for (platform, device) in [(Platform::Webnn, Some("cpu")), (Platform::Wasm, None)] {
        let request = LoadRequest {
            platform,
            device: device.map(str::to_string),
            free_dimension_overrides: (platform == Platform::Webnn).then(|| fixed.clone()),
            ..LoadRequest::new(platform)
        };
        let key = format!("minilm-{}", platform.name());
        session.load(&key, &model, &request).await.expect("load");
        let out = session.run(&key, &inputs, &options).await.expect("run");
        rows.push((format!("MiniLM on {}", platform.name()), out.run_ms));
    }
    println!("headless-shell {}, in-page times, {RUNS} runs each", browser.capabilities.version);
    println!("{:<26}{:>9}{:>9}", "", "p50 ms", "p90 ms");
    for (name, ms) in &rows {
        println!("{name:<26}{:9.3}{:9.3}", median(ms), p90(ms));
    }
    let (floor, webnn) = (median(&rows[0].1), median(&rows[1].1));
    println!("floor / MiniLM-on-webnn (p50): {:.2}", floor / webnn);
    drop(browser);
    pool.shutdown().await;
}

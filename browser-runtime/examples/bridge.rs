//! Benchmark: host-observed latency against in-page latency for all-MiniLM-L6-v2 on wasm in
//! Debian Chromium (or the browser named), side by side in one run. The difference is what the bridge (the data
//! channel's WebSocket round trip, the binary frames, the page's glue around `session.run`)
//! adds to each inference. It is split into transport (host-observed minus the page's whole
//! handling of the call) and page glue (that handling minus `session.run`).
//!
//!     source scripts/env.sh && cargo run --release -p webaccel-browser-runtime --example bridge [chromium|headless-shell|firefox]
//!
//! Each sample is one `run` call with one timed run: host time is measured around the call,
//! in-page time is ORT's `session.run` as the page timed it. Then calls of 20 runs each, the
//! way `accelerate` makes its repetitions, for the overhead per inference there.

use std::time::Instant;

use webaccel_browser_runtime::{
    default_ort_dir, BrowserKey, BrowserKind, BrowserPool, LoadRequest, PageSettings, Platform, RunOptions,
};

mod common;

use common::{median, p90};

const SAMPLES: usize = 200;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let model = common::minilm_path();
    let inputs = common::eating_food();

    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let kind = std::env::args()
        .nth(1)
        .map(|a| BrowserKind::parse(&a).expect("a browser name"))
        .unwrap_or(BrowserKind::Chromium);
    let browser = pool.get(&BrowserKey::plain(kind)).await.expect("launch the browser");
    let request = LoadRequest::new(Platform::Wasm);
    browser.session.load("minilm", &model, &request).await.expect("load");
    browser.session.run("minilm", &inputs, &RunOptions::timed(20, 1)).await.expect("warm up");

    let (mut host, mut page, mut overhead, mut ping) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut glue, mut transport, mut channel, mut channel_sized) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let output_sized = vec![0u8; 18 * 384 * 4];
    for _ in 0..SAMPLES {
        let t0 = Instant::now();
        let out = browser.session.run("minilm", &inputs, &RunOptions::timed(0, 1)).await.expect("run");
        let host_ms = t0.elapsed().as_secs_f64() * 1000.0;
        host.push(host_ms);
        // Each call after warm-up runs the model exactly once, timed.
        assert!(!out.first_run_this_call && out.run_ms.len() == 1);
        page.push(out.run_ms[0]);
        overhead.push(host_ms - out.run_ms[0]);
        glue.push(out.page_ms - out.run_ms[0]);
        transport.push(host_ms - out.page_ms);
        let t0 = Instant::now();
        browser.session.echo(Vec::new()).await.expect("empty echo");
        channel.push(t0.elapsed().as_secs_f64() * 1000.0);
        let body = output_sized.clone();
        let t0 = Instant::now();
        browser.session.echo(body).await.expect("sized echo");
        channel_sized.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t0 = Instant::now();
        browser.session.ping().await.expect("ping");
        ping.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let (hm, pm) = (median(&host), median(&page));
    println!(
        "all-MiniLM-L6-v2 int8-weights, wasm, {} {}, 18 tokens, {SAMPLES} samples",
        kind.name(),
        browser.capabilities.version
    );
    println!("host-observed  p50 {hm:8.3} ms  p90 {:8.3} ms", p90(&host));
    println!("in-page        p50 {pm:8.3} ms  p90 {:8.3} ms", p90(&page));
    println!("bridge overhead p50 {:7.3} ms  p90 {:8.3} ms", median(&overhead), p90(&overhead));
    println!("  of which: transport p50 {:.3} ms, page glue p50 {:.3} ms", median(&transport), median(&glue));
    println!("bare data-channel round trip p50 {:7.3} ms", median(&channel));
    println!("data-channel echo of the output's size ({} B) p50 {:7.3} ms", output_sized.len(), median(&channel_sized));
    println!(
        "bare control-plane round trip (CDP; WebDriver BiDi for Firefox) p50 {:7.3} ms, for comparison",
        median(&ping)
    );
    println!("ratio host/in-page (p50): {:.3}", hm / pm);

    // The same, with the runs of a call made in the page, as `accelerate` and `compare` make
    // them: the bridge is crossed once per call, so its cost per inference shrinks by `runs`.
    const RUNS: u32 = 20;
    let mut per_inference = Vec::new();
    for _ in 0..SAMPLES / 10 {
        let t0 = Instant::now();
        let out = browser.session.run("minilm", &inputs, &RunOptions::timed(0, RUNS)).await.expect("run");
        let host_ms = t0.elapsed().as_secs_f64() * 1000.0;
        per_inference.push((host_ms - out.run_ms.iter().sum::<f64>()) / f64::from(RUNS));
    }
    println!(
        "bridge overhead per inference with {RUNS} runs per call: p50 {:.3} ms  p90 {:.3} ms",
        median(&per_inference),
        p90(&per_inference)
    );
    drop(browser);
    pool.shutdown().await;
}

//! Benchmark: a browser on a Selenium Grid node against a local one, side by side in one run:
//! the bridge's overhead per inference call (host-observed minus ORT's `session.run` in the
//! page), a bare and a 4 KiB data-channel round trip, and the model's delivery to the page.
//!
//!     WEBACCEL_GRID=http://hub:4444 cargo run -p webaccel-browser-runtime --example remote grid:<slot>
//!
//! `benchmarks/fleet.py` starts a hub and nodes in network namespaces and runs this. Samples
//! alternate between the two browsers, so drift on a shared machine lands on both.

use std::time::Instant;

use webaccel_browser_runtime::{
    default_ort_dir, BrowserKey, BrowserKind, BrowserPool, BrowserTarget, LoadRequest, PageSettings, Platform,
    PooledBrowser, RunOptions,
};

mod common;

use common::{median, p90};

const SAMPLES: usize = 200;
/// Loads of the model under fresh names, each fetching its bytes again (served `no-store`).
const DELIVERIES: usize = 8;
const ROUND_TRIP: usize = 4096;

#[derive(Default)]
struct Figures {
    overhead: Vec<f64>,
    bare: Vec<f64>,
    sized: Vec<f64>,
    delivery: Vec<f64>,
}

async fn sample(browser: &PooledBrowser, inputs: &[webaccel_browser_runtime::Tensor], into: &mut Figures) {
    let session = &browser.session;
    let t0 = Instant::now();
    let out = session.run("minilm", inputs, &RunOptions::timed(0, 1)).await.expect("run");
    into.overhead.push(t0.elapsed().as_secs_f64() * 1000.0 - out.run_ms[0]);
    let t0 = Instant::now();
    session.echo(Vec::new()).await.expect("empty echo");
    into.bare.push(t0.elapsed().as_secs_f64() * 1000.0);
    let t0 = Instant::now();
    session.echo(vec![7u8; ROUND_TRIP]).await.expect("4 KiB echo");
    into.sized.push(t0.elapsed().as_secs_f64() * 1000.0);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let slot = std::env::args().nth(1).expect("a Grid slot, as grid:<name>");
    let remote = BrowserTarget::parse(&slot).filter(|t| matches!(t, BrowserTarget::Remote(_))).expect("grid:<name>");
    let model = common::minilm_path();
    let model_bytes = std::fs::metadata(&model).expect("the model file").len();
    let inputs = common::eating_food();

    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let local = pool.get(&BrowserKey::plain(BrowserKind::Chromium)).await.expect("launch local Chromium");
    let remote = pool.get(&BrowserKey::plain(remote)).await.expect("a session on the Grid slot");
    let request = LoadRequest::new(Platform::Wasm);
    let browsers = [(&local, "local"), (&remote, "remote")];
    let mut figures = [Figures::default(), Figures::default()];
    for (browser, _) in browsers {
        browser.session.load("minilm", &model, &request).await.expect("load");
        browser.session.run("minilm", &inputs, &RunOptions::timed(20, 1)).await.expect("warm up");
    }
    for _ in 0..SAMPLES {
        for ((browser, _), into) in browsers.iter().zip(figures.iter_mut()) {
            sample(browser, &inputs, into).await;
        }
    }
    for i in 0..DELIVERIES {
        for ((browser, _), into) in browsers.iter().zip(figures.iter_mut()) {
            let key = format!("delivery-{i}");
            let info = browser.session.load(&key, &model, &request).await.expect("load again");
            into.delivery.push(info.model_fetch_ms.expect("a fresh load fetches the model"));
            browser.session.unload(&key).await.expect("unload");
        }
    }

    let node = remote.capabilities.node.as_ref().map(|n| n.uri.clone()).unwrap_or_default();
    println!(
        "all-MiniLM-L6-v2 int8-weights, wasm, 18 tokens; local {} against {slot} ({} on {node}); {SAMPLES} samples each",
        local.capabilities.version, remote.capabilities.version
    );
    println!("{:<44} {:>10} {:>10} {:>8}", "p50 (p90)", "local", "remote", "ratio");
    let row = |what: &str, get: fn(&Figures) -> &Vec<f64>| {
        let (l, r) = (get(&figures[0]), get(&figures[1]));
        println!(
            "{what:<44} {:>5.3} ({:.2}) {:>5.3} ({:.2}) {:>7.2}x",
            median(l),
            p90(l),
            median(r),
            p90(r),
            median(r) / median(l)
        );
    };
    row("bridge overhead per inference call, ms", |f| &f.overhead);
    row("bare data-channel round trip, ms", |f| &f.bare);
    row("4 KiB data-channel round trip, ms", |f| &f.sized);
    row(&format!("model delivery ({:.1} MB, {DELIVERIES} loads), ms", model_bytes as f64 / 1e6), |f| &f.delivery);
    pool.shutdown().await;
}

//! Benchmark: moving a 64 MB tensor host → page → host over the session's data channel (a
//! WebSocket carrying binary frames), against the page's plain download of the same bytes as a
//! static file from the same loopback server, side by side in one run. Also a 4 KiB body.
//!
//!     source scripts/env.sh && cargo run -p webaccel-browser-runtime --example transfer

use std::time::Instant;

use webaccel_browser_runtime::{default_ort_dir, BrowserKey, BrowserKind, BrowserPool, PageSettings};

const BIG: usize = 64 * 1024 * 1024;
const REPEATS: usize = 5;

mod common;

use common::median;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pool = BrowserPool::new(default_ort_dir(), PageSettings::default());
    let browser = pool.get(&BrowserKey::plain(BrowserKind::Chromium)).await.expect("launch chromium");
    let session = &browser.session;

    // Deterministic, incompressible-looking bytes, and the same bytes as a static file.
    let bytes: Vec<u8> = (0..BIG as u64).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &bytes).expect("write temp file");

    let (mut echo_ms, mut download_ms) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let body = bytes.clone();
        let t0 = Instant::now();
        let back = session.echo(body).await.expect("echo");
        echo_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(back == bytes, "the echoed body differs from what was sent");
        let (n, ms) = session.download(file.path()).await.expect("download");
        assert_eq!(n as usize, BIG);
        download_ms.push(ms);
    }
    let (echo, download) = (median(&echo_ms), median(&download_ms));
    // The echo moves the bytes twice (there and back); the download once.
    let echo_mbps = 2.0 * BIG as f64 / 1e6 / (echo / 1000.0);
    let download_mbps = BIG as f64 / 1e6 / (download / 1000.0);
    println!("64 MiB body, Chromium {}, median of {REPEATS}", browser.capabilities.version);
    println!("host -> page -> host (data channel): {echo:8.1} ms  = {echo_mbps:7.1} MB/s moved");
    println!("page download of the same file:     {download:8.1} ms  = {download_mbps:7.1} MB/s");
    println!("throughput ratio (round trip / plain download): {:.2}", echo_mbps / download_mbps);

    let small = vec![7u8; 4096];
    let mut small_ms = Vec::new();
    for _ in 0..50 {
        let body = small.clone();
        let t0 = Instant::now();
        session.echo(body).await.expect("small echo");
        small_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    println!("4 KiB body round trip: p50 {:.3} ms", median(&small_ms));
    drop(browser);
    pool.shutdown().await;
}

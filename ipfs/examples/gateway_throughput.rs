//! Benchmark, side by side in one run against the same Helia gateway on loopback:
//! - a plain path fetch (`GET /ipfs/CID`: the gateway assembles the file, we trust it),
//! - the verified CAR fetch into the store (every block hashed against its CID),
//! - a cache-hit resolve plus reading the stored file.
//!
//! Both fetches write to a file and flush it to disk, as the store must.
//!
//!     ./scripts/setup.sh   # once: the Helia test node
//!     source scripts/env.sh && cargo run --release -p webaccel-ipfs --example gateway_throughput [MiB]

#[path = "../tests/common/helia.rs"]
#[allow(dead_code)]
mod helia;

use std::io::{Read, Write};
use std::time::Instant;

use webaccel_ipfs::{parse_cid, GatewayConfig, Resolver, Store};

const REPEATS: usize = 5;
const MIB: usize = 1024 * 1024;

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(128);
    let size = mib * MIB;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("model.bin");
    std::fs::write(&input, helia::pseudo_random(size, 42)).expect("write input");

    let node = helia::Helia::new();
    let added = node.add(&[&input], MIB, 1024).await;
    let gateway = node.serve().await;
    let cid = parse_cid(&added[0].cid).expect("Helia's CID");

    let config = GatewayConfig::default().with_gateways([&gateway.url]).expect("gateway URL");
    let http = reqwest::Client::new();
    let (mut plain_ms, mut car_ms, mut hit_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..REPEATS {
        // Plain path fetch, streamed to a file.
        let out = dir.path().join(format!("plain-{round}"));
        let t0 = Instant::now();
        let mut response = http.get(format!("{}/ipfs/{cid}", gateway.url)).send().await.expect("plain GET");
        assert!(response.status().is_success());
        let mut file = std::fs::File::create(&out).expect("create");
        let mut n = 0;
        while let Some(chunk) = response.chunk().await.expect("body") {
            file.write_all(&chunk).expect("write");
            n += chunk.len();
        }
        file.sync_all().expect("sync");
        plain_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, size);
        std::fs::remove_file(&out).ok();

        // Verified CAR fetch into a fresh store.
        let store_dir = dir.path().join(format!("store-{round}"));
        let ipfs = Resolver::new(Store::open(&store_dir, u64::MAX).expect("store"), config.clone()).expect("resolver");
        let t0 = Instant::now();
        let fetched = ipfs.resolve(&cid).await.expect("verified fetch");
        car_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(!fetched.record.cache_hit && fetched.record.via == "car" && fetched.record.bytes == size as u64);

        // Cache hit: resolve, then read the file through.
        let t0 = Instant::now();
        let hit = ipfs.resolve(&cid).await.expect("cache hit");
        let mut file = std::fs::File::open(&hit.path).expect("open");
        let mut buf = vec![0u8; MIB];
        let mut n = 0;
        loop {
            let k = file.read(&mut buf).expect("read");
            if k == 0 {
                break;
            }
            n += k;
        }
        hit_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(hit.record.cache_hit && n == size);
        std::fs::remove_dir_all(&store_dir).ok();
    }
    let (plain, car, hit) = (median(&mut plain_ms), median(&mut car_ms), median(&mut hit_ms));
    let mbps = |ms: f64| size as f64 / 1e6 / (ms / 1000.0);
    println!("{mib} MiB file ({}), Helia gateway on loopback, median of {REPEATS}", added[0].cid);
    println!("plain path fetch (GET /ipfs/CID, to a file, fsync): {plain:8.1} ms = {:8.1} MB/s", mbps(plain));
    println!("verified CAR fetch into the store (fsync, rename):  {car:8.1} ms = {:8.1} MB/s", mbps(car));
    println!("cache-hit resolve + read of the stored file:         {hit:8.1} ms = {:8.1} MB/s", mbps(hit));
    println!("ratio verified CAR / plain path:  {:.2} (goal >= 0.9)", plain / car);
    println!("ratio cache-hit read / plain path: {:.1}", plain / hit);
}

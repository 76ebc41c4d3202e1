//! Benchmark, side by side in one run against the same Helia gateway on loopback:
//! - a plain path fetch (`GET /ipfs/CID`: the gateway assembles the file, we trust it),
//! - the verified CAR fetch into the store (every block hashed against its CID),
//! - a cache-hit resolve plus reading the stored file;
//! - the raw-block fallback (through a proxy that refuses CARs), for its own figure.
//!
//! Every fetch writes to a file and flushes it to disk, as the store must. The gateway runs on
//! the same two cores, so client CPU time (printed) slows the gateway too.
//!
//!     ./scripts/setup.sh   # once: the Helia test node
//!     source scripts/env.sh && cargo run --release -p webaccel-ipfs --example gateway_throughput [MiB]

#[path = "../tests/common/helia.rs"]
#[allow(dead_code)]
mod helia;
#[path = "../tests/common/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use std::io::{Read, Write};
use std::time::Instant;

use webaccel_ipfs::{parse_cid, GatewayConfig, Resolver, Store};

const REPEATS: usize = 5;
const MIB: usize = 1024 * 1024;

/// This process's CPU time so far (user + system), from /proc (10 ms ticks).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state; utime and stime
    // are the 12th and 13th of those.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    f.iter().sum::<u64>() as f64 * 10.0
}

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
    let no_car = proxy::start(&gateway.url, proxy::Tamper::NoCar).await;
    let raw_config = GatewayConfig::default().with_gateways([&no_car.url]).expect("proxy URL");
    // reqwest is built without a bundled TLS crypto provider (see the workspace Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let (mut plain_ms, mut raw_car_ms, mut car_ms, mut hit_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut blocks_ms = Vec::new();
    let (mut raw_car_cpu, mut car_cpu) = (Vec::new(), Vec::new());
    // Downloads a URL to a file (fsync), unverified; returns the milliseconds and bytes.
    let download = |url: String, accept: &'static str, out: std::path::PathBuf| {
        let http = http.clone();
        async move {
            let t0 = Instant::now();
            let mut response = http.get(url).header("accept", accept).send().await.expect("GET");
            assert!(response.status().is_success());
            let mut file = std::fs::File::create(&out).expect("create");
            let mut n = 0;
            while let Some(chunk) = response.chunk().await.expect("body") {
                file.write_all(&chunk).expect("write");
                n += chunk.len();
            }
            file.sync_all().expect("sync");
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            std::fs::remove_file(&out).ok();
            (ms, n)
        }
    };
    for round in 0..REPEATS {
        // Plain path fetch: the gateway assembles the file.
        let (ms, n) = download(format!("{}/ipfs/{cid}", gateway.url), "*/*", dir.path().join("plain")).await;
        plain_ms.push(ms);
        assert_eq!(n, size);
        // The same CAR the verified fetch asks for, saved unverified: what the gateway's CAR
        // export costs by itself.
        let url = format!("{}/ipfs/{cid}?format=car&dag-scope=all", gateway.url);
        let cpu0 = cpu_ms();
        let (ms, n) = download(url, "application/vnd.ipld.car", dir.path().join("car")).await;
        raw_car_cpu.push(cpu_ms() - cpu0);
        raw_car_ms.push(ms);
        assert!(n > size);

        // Verified CAR fetch into a fresh store.
        let store_dir = dir.path().join(format!("store-{round}"));
        let ipfs = Resolver::new(Store::open(&store_dir, u64::MAX).expect("store"), config.clone()).expect("resolver");
        let (t0, cpu0) = (Instant::now(), cpu_ms());
        let fetched = ipfs.resolve(&cid).await.expect("verified fetch");
        car_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        car_cpu.push(cpu_ms() - cpu0);
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

        // The fallback for gateways without CARs: a verified request per block, several in flight.
        let ipfs =
            Resolver::new(Store::open(&store_dir, u64::MAX).expect("store"), raw_config.clone()).expect("resolver");
        let t0 = Instant::now();
        let fetched = ipfs.resolve(&cid).await.expect("raw-block fetch");
        blocks_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(fetched.record.via == "raw" && fetched.record.bytes == size as u64);
        std::fs::remove_dir_all(&store_dir).ok();
    }
    let (plain, raw_car, car, hit) =
        (median(&mut plain_ms), median(&mut raw_car_ms), median(&mut car_ms), median(&mut hit_ms));
    let mbps = |ms: f64| size as f64 / 1e6 / (ms / 1000.0);
    println!("{mib} MiB file ({}), Helia gateway on loopback, median of {REPEATS}", added[0].cid);
    println!("plain path fetch (GET /ipfs/CID, to a file, fsync): {plain:8.1} ms = {:8.1} MB/s", mbps(plain));
    println!(
        "unverified CAR download (to a file, fsync):          {raw_car:8.1} ms = {:8.1} MB/s  (client CPU {:.0} ms)",
        mbps(raw_car),
        median(&mut raw_car_cpu)
    );
    println!(
        "verified CAR fetch into the store (fsync, rename):  {car:8.1} ms = {:8.1} MB/s  (client CPU {:.0} ms)",
        mbps(car),
        median(&mut car_cpu)
    );
    println!("cache-hit resolve + read of the stored file:         {hit:8.1} ms = {:8.1} MB/s", mbps(hit));
    let blocks = median(&mut blocks_ms);
    println!("raw-block fallback (a proxy refusing CARs; verified):  {blocks:8.1} ms = {:8.1} MB/s", mbps(blocks));
    println!("ratio verified CAR / plain path:  {:.2} (goal >= 0.9)", plain / car);
    println!("ratio verified CAR / unverified CAR: {:.2} (the client's own cost)", raw_car / car);
    println!(
        "ratio unverified CAR / plain path: {:.2} (the gateway's CAR export against its path export)",
        plain / raw_car
    );
    println!("ratio cache-hit read / plain path: {:.1}", plain / hit);
}

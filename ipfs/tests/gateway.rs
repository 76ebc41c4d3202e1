//! The gateway client against a real IPFS node (Helia behind `tests/ipfs-gateway/gateway.mjs`),
//! and against gateways that lie, cut, stall, refuse or are down.

mod common;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use common::helia::{pseudo_random, Gateway, Helia};
use common::hostile;
use common::proxy::{self, Tamper};
use webaccel_ipfs::{parse_cid, Error, FetchError, GatewayConfig, Resolver, Store};

const MIB: usize = 1024 * 1024;

/// Every test gets a deadline: a hang is a failure, not a stuck suite.
async fn within<T>(secs: u64, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), test).await.expect("the test did not finish in time")
}

/// A Helia node serving one multi-block file (3 MiB and a bit: four leaves and a root).
struct Fixture {
    _helia: Helia,
    gateway: Gateway,
    data: Vec<u8>,
    cid: String,
    /// A second file in the same node, for the wrong-root case.
    other_cid: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(3 * MIB + 12_345, 11);
    let (a, b) = (dir.path().join("model.onnx"), dir.path().join("other.onnx"));
    std::fs::write(&a, &data).unwrap();
    std::fs::write(&b, pseudo_random(2 * MIB + 7, 12)).unwrap();
    let helia = Helia::new();
    let added = helia.add(&[&a, &b], MIB, 1024).await;
    let gateway = helia.serve().await;
    Fixture { cid: added[0].cid.clone(), other_cid: added[1].cid.clone(), _helia: helia, gateway, data, _dir: dir }
}

/// Short timeouts and backoff, so the failure paths take a second, not a minute.
fn config(gateways: &[&str]) -> GatewayConfig {
    GatewayConfig {
        attempts: 2,
        backoff: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        ..GatewayConfig::default()
    }
    .with_gateways(gateways)
    .unwrap()
}

fn resolver(store_dir: &Path, max_bytes: u64, gateways: &[&str]) -> Resolver {
    Resolver::new(Store::open(store_dir, max_bytes).unwrap(), config(gateways)).unwrap()
}

fn tmp_is_empty(store_dir: &Path) -> bool {
    std::fs::read_dir(store_dir.join("tmp")).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_multi_block_file_verified_then_hits_the_cache() {
    within(120, async {
        let f = fixture().await;
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&f.gateway.url]);
        let cid = parse_cid(&f.cid).unwrap();

        let miss = ipfs.resolve(&cid).await.unwrap();
        assert_eq!(std::fs::read(&miss.path).unwrap(), f.data);
        let r = &miss.record;
        assert_eq!((r.cache_hit, r.verified, r.via, r.bytes), (false, true, "car", f.data.len() as u64));
        assert_eq!(r.gateway.as_deref(), Some(f.gateway.url.as_str()));
        assert_eq!(r.blocks, 5, "four 1 MiB leaves (the last short) and the root");
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert!(r.ms > 0.0);

        let hit = ipfs.resolve(&cid).await.unwrap();
        assert_eq!(hit.path, miss.path);
        let r = &hit.record;
        assert_eq!((r.cache_hit, r.via, r.gateway.clone(), r.bytes), (true, "cache", None, f.data.len() as u64));
        assert_eq!(std::fs::read(&hit.path).unwrap(), f.data);
        let stats = ipfs.stats();
        assert_eq!((stats.hits, stats.misses, stats.store.files), (1, 1, 1));
        assert!(tmp_is_empty(store.path()));

        // A cache hit needs no gateway at all.
        drop(f.gateway);
        let offline = resolver(store.path(), 1 << 30, &["http://127.0.0.1:9"]);
        assert!(offline.resolve(&cid).await.unwrap().record.cache_hit);
    })
    .await
}

/// The first gateway damages its answer in `tamper`'s way; the second is honest. The fetch
/// must succeed from the second, with the first's failure named; with only the first, it must
/// fail and leave nothing in the store.
async fn rejected_then_next_gateway(tamper: fn(&Fixture) -> Tamper, expect: &[&str]) {
    within(120, async {
        let f = fixture().await;
        let bad = proxy::start(&f.gateway.url, tamper(&f)).await;
        let cid = parse_cid(&f.cid).unwrap();

        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&bad.url, &f.gateway.url]);
        let got = ipfs.resolve(&cid).await.unwrap();
        assert_eq!(std::fs::read(&got.path).unwrap(), f.data);
        assert_eq!(got.record.gateway.as_deref(), Some(f.gateway.url.as_str()), "{:?}", got.record);
        let first = &got.record.failures[0];
        assert!(first.contains(&bad.url) && first.contains(&f.cid), "names gateway and CID: {first}");
        assert!(expect.iter().any(|e| first.contains(e)), "expected one of {expect:?} in: {first}");

        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&bad.url]);
        let err = ipfs.resolve(&cid).await.unwrap_err();
        assert!(matches!(err, Error::Fetch(FetchError::Exhausted { .. })), "{err}");
        let text = err.to_string();
        assert!(text.contains(&bad.url) && text.contains(&f.cid), "{text}");
        assert!(!ipfs.store().contains(&cid), "nothing unverified reaches the store");
        assert!(tmp_is_empty(store.path()), "no partial file is left behind");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_rejected() {
    rejected_then_next_gateway(|_| Tamper::FlipByte, &["does not match its CID"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_car_is_rejected() {
    rejected_then_next_gateway(|_| Tamper::Truncate, &["truncated"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_blocks_are_rejected() {
    rejected_then_next_gateway(|_| Tamper::SwapBlocks, &["does not match its CID"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_root_is_rejected() {
    rejected_then_next_gateway(|f| Tamper::WrongRoot(f.other_cid.clone()), &["wrong root"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_times_out() {
    rejected_then_next_gateway(|_| Tamper::Stall, &["no response within", "timed out", "timeout"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_silent_gateways_fall_back() {
    within(120, async {
        let f = fixture().await;
        let down = proxy::down().await;
        let silent = proxy::silent().await;
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&down, &silent.url, &f.gateway.url]);
        let t0 = std::time::Instant::now();
        let got = ipfs.resolve(&parse_cid(&f.cid).unwrap()).await.unwrap();
        assert_eq!(std::fs::read(&got.path).unwrap(), f.data);
        assert_eq!(got.record.gateway.as_deref(), Some(f.gateway.url.as_str()));
        let failures = got.record.failures.join("\n");
        assert!(failures.contains(&down) && failures.contains("refused"), "{failures}");
        assert!(failures.contains(&silent.url) && failures.contains("no response within"), "{failures}");
        // Two tries each, 2 s read timeout, 50 ms backoff: well under 10 s.
        assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_cars_is_asked_block_by_block() {
    within(120, async {
        let f = fixture().await;
        let no_car = proxy::start(&f.gateway.url, Tamper::NoCar).await;
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&no_car.url]);
        let got = ipfs.resolve(&parse_cid(&f.cid).unwrap()).await.unwrap();
        assert_eq!(std::fs::read(&got.path).unwrap(), f.data);
        assert_eq!((got.record.via, got.record.verified, got.record.blocks), ("raw", true, 5));
        assert!(got.record.failures[0].contains("does not serve CARs"), "{:?}", got.record.failures);
    })
    .await
}

/// The fallback requests several blocks at once (`raw_blocks.rs`); the walk must still get them
/// in its order. A deep tree (64 KiB chunks, three links per node) with repeated chunks, and so
/// repeated subtrees, checks that against the same node's CAR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_by_block_fallback_assembles_a_deep_dag_with_repeats() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        const CHUNK: usize = 64 * 1024;
        let mut data = vec![0u8; 9 * CHUNK]; // nine equal leaves: three equal subtrees of three
        data.extend(pseudo_random(40 * CHUNK + 1_000, 13));
        let input = dir.path().join("deep.onnx");
        std::fs::write(&input, &data).unwrap();
        let helia = Helia::new();
        let added = helia.add(&[&input], CHUNK, 3).await;
        let gateway = helia.serve().await;
        let no_car = proxy::start(&gateway.url, Tamper::NoCar).await;
        let cid = parse_cid(&added[0].cid).unwrap();

        let store = tempfile::tempdir().unwrap();
        let by_car = resolver(store.path(), 1 << 30, &[&gateway.url]).resolve(&cid).await.unwrap();
        let store = tempfile::tempdir().unwrap();
        let by_block = resolver(store.path(), 1 << 30, &[&no_car.url]).resolve(&cid).await.unwrap();
        assert_eq!(std::fs::read(&by_block.path).unwrap(), data);
        assert_eq!((by_car.record.via, by_block.record.via), ("car", "raw"));
        assert_eq!(by_block.record.blocks, by_car.record.blocks, "each distinct block once, as in the CAR");
        assert!(by_block.record.blocks > 40, "a deep tree: {}", by_block.record.blocks);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_in_the_fallback_is_rejected() {
    within(120, async {
        let f = fixture().await;
        let bad = proxy::start(&f.gateway.url, Tamper::NoCarFlipByte).await;
        let cid = parse_cid(&f.cid).unwrap();
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&bad.url]);
        let text = ipfs.resolve(&cid).await.unwrap_err().to_string();
        assert!(text.contains("raw blocks") && text.contains("does not match its CID"), "{text}");
        assert!(!ipfs.store().contains(&cid), "nothing unverified reaches the store");
        assert!(tmp_is_empty(store.path()), "no partial file is left behind");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_files_are_evicted() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, pseudo_random(2 * MIB + i, 20 + i as u64)).unwrap();
                p
            })
            .collect();
        let helia = Helia::new();
        let added = helia.add(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>(), MIB, 1024).await;
        let gateway = helia.serve().await;
        let cids: Vec<_> = added.iter().map(|a| parse_cid(&a.cid).unwrap()).collect();

        // Room for two of the three files.
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), (5 * MIB) as u64, &[&gateway.url]);
        ipfs.resolve(&cids[0]).await.unwrap();
        ipfs.resolve(&cids[1]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(ipfs.resolve(&cids[0]).await.unwrap().record.cache_hit, "use 0 again: 1 is now the oldest");
        ipfs.resolve(&cids[2]).await.unwrap();
        assert!(!ipfs.store().contains(&cids[1]), "1 was least recently used");
        assert!(ipfs.store().contains(&cids[0]) && ipfs.store().contains(&cids[2]));
        assert!(ipfs.store().stats().bytes <= (5 * MIB) as u64);
        // Evicted means fetched again, not an error.
        let again = ipfs.resolve(&cids[1]).await.unwrap();
        assert!(!again.record.cache_hit);
        assert_eq!(std::fs::read(&again.path).unwrap(), std::fs::read(&files[1]).unwrap());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cid_the_gateway_lacks_names_every_gateway() {
    within(60, async {
        let f = fixture().await;
        let down = proxy::down().await;
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), 1 << 30, &[&f.gateway.url, &down]);
        // A valid CID of bytes nobody added.
        let missing = webaccel_ipfs::cid::raw_cid(b"never added");
        let text = ipfs.resolve(&missing).await.unwrap_err().to_string();
        assert!(text.contains("HTTP 404") && text.contains(&f.gateway.url), "{text}");
        assert!(text.contains(&down) && text.contains(&missing.to_string()), "{text}");
        assert!(text.contains("WEBACCEL_GATEWAYS"), "says what to do: {text}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_files_resolve_from_the_store_with_helias_cid() {
    within(60, async {
        let f = fixture().await;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("model.onnx");
        std::fs::write(&input, &f.data).unwrap();
        let store = tempfile::tempdir().unwrap();
        // No usable gateway: the add must be enough.
        let ipfs = resolver(store.path(), 1 << 30, &["http://127.0.0.1:9"]);
        let added = ipfs.add(&input).unwrap();
        assert_eq!(added.cid, f.cid, "the same CID Helia gave the same bytes");
        let hit = ipfs.resolve(&parse_cid(&added.cid).unwrap()).await.unwrap();
        assert!(hit.record.cache_hit);
        assert_eq!(std::fs::read(&hit.path).unwrap(), f.data);
    })
    .await
}

/// A file whose root declares more than the store may hold is refused before any byte is
/// written, and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_the_store_is_refused_up_front() {
    within(60, async {
        let f = fixture().await;
        let store = tempfile::tempdir().unwrap();
        let ipfs = resolver(store.path(), (2 * MIB) as u64, &[&f.gateway.url]);
        let cid = parse_cid(&f.cid).unwrap();
        let err = ipfs.resolve(&cid).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Fetch(FetchError::Fatal(_))), "{text}");
        assert!(text.contains(&format!("declares {} bytes", f.data.len())), "{text}");
        assert!(text.contains("WEBACCEL_IPFS_MAX_BYTES"), "says what to do: {text}");
        assert!(!ipfs.store().contains(&cid) && tmp_is_empty(store.path()));
    })
    .await
}

/// Blocks of a hostile DAG: an honest 6 MiB subtree (one 1 MiB leaf six times), then the same
/// subtree 63 more times under links that claim one byte each. The root declares 6 MiB + 63
/// bytes; 1 MiB of blocks would expand to 384 MiB.
fn expanding_dag() -> (webaccel_ipfs::Cid, std::collections::HashMap<webaccel_ipfs::Cid, bytes::Bytes>) {
    use webaccel_ipfs::dagpb::{encode_file_node, Child};
    let leaf = vec![3u8; MIB];
    let leaf_cid = webaccel_ipfs::cid::raw_cid(&leaf);
    let middle = encode_file_node(&vec![Child { cid: leaf_cid, tsize: MIB as u64, content_bytes: MIB as u64 }; 6]);
    let middle_cid = webaccel_ipfs::cid::dag_pb_cid(&middle);
    let six = 6 * MIB as u64;
    let mut children = vec![Child { cid: middle_cid, tsize: six, content_bytes: six }];
    children.extend(vec![Child { cid: middle_cid, tsize: 1, content_bytes: 1 }; 63]);
    let root = encode_file_node(&children);
    let root_cid = webaccel_ipfs::cid::dag_pb_cid(&root);
    let blocks = [(root_cid, root), (middle_cid, middle), (leaf_cid, leaf)]
        .into_iter()
        .map(|(c, b)| (c, bytes::Bytes::from(b)))
        .collect();
    (root_cid, blocks)
}

/// Every byte the walk writes counts against the store's limit, each copy of a repeated
/// subtree included: a DAG that lies about its size stops at the limit, and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_that_expands_past_the_limit_is_stopped_there() {
    within(60, async {
        let (root, blocks) = expanding_dag();
        let gateway = hostile::serve(blocks, None).await;
        let store = tempfile::tempdir().unwrap();
        let limit = (8 * MIB) as u64;
        let ipfs = resolver(store.path(), limit, &[&gateway.url]);
        let err = ipfs.resolve(&root).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("expands past {limit} bytes")), "{text}");
        assert!(text.contains(&gateway.url) && text.contains(&root.to_string()), "{text}");
        assert!(!ipfs.store().contains(&root) && tmp_is_empty(store.path()));
    })
    .await
}

/// A gateway that answers, but a few bytes at a time, never trips the per-read timeout; the
/// fetch's overall deadline stops it, with an error that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_gateway_meets_the_deadline() {
    within(60, async {
        let data = pseudo_random(64 * 1024, 5);
        let cid = webaccel_ipfs::cid::raw_cid(&data);
        let blocks = [(cid, bytes::Bytes::from(data))].into_iter().collect();
        // 64 bytes every 100 ms: 1000 s for the block, each read well inside the 2 s timeout.
        let gateway = hostile::serve(blocks, Some((64, Duration::from_millis(100)))).await;
        let store = tempfile::tempdir().unwrap();
        let config = GatewayConfig { deadline: Duration::from_secs(3), ..config(&[&gateway.url]) };
        let ipfs = Resolver::new(Store::open(store.path(), 1 << 30).unwrap(), config).unwrap();
        let started = std::time::Instant::now();
        let err = ipfs.resolve(&cid).await.unwrap_err();
        let took = started.elapsed();
        let text = err.to_string();
        assert!(matches!(err, Error::Fetch(FetchError::Deadline { .. })), "{text}");
        assert!(text.contains("within 3 s") && text.contains("WEBACCEL_IPFS_DEADLINE_S"), "{text}");
        assert!(took < Duration::from_secs(10), "stopped at the deadline, not later: {took:?}");
        assert!(!ipfs.store().contains(&cid) && tmp_is_empty(store.path()));
    })
    .await
}

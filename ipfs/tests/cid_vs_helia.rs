//! The importer gives the same CIDs as Helia (@helia/unixfs) for the same bytes and settings.

mod common;

use std::time::Duration;

use common::helia::{pseudo_random, Helia};
use webaccel_ipfs::importer::{import, ImportSettings};

const MIB: usize = 1024 * 1024;

async fn compare(cases: &[(&str, Vec<u8>)], settings: ImportSettings) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = cases
        .iter()
        .map(|(name, data)| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect();
    let helia = Helia::new();
    let added = helia
        .add(&paths.iter().map(|p| p.as_path()).collect::<Vec<_>>(), settings.chunk_size, settings.max_children)
        .await;
    assert_eq!(added.len(), cases.len());
    for ((name, data), theirs) in cases.iter().zip(&added) {
        let ours = import(&data[..], settings, |_, _| Ok(())).unwrap();
        assert_eq!(ours.cid.to_string(), theirs.cid, "{name} ({} bytes) with {settings:?}", data.len());
        assert_eq!(ours.bytes, theirs.bytes);
    }
}

#[tokio::test]
async fn same_cids_as_helia_with_the_default_settings() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let cases = vec![
            ("empty", Vec::new()),
            ("one-byte", vec![42]),
            ("just-under-1mib", pseudo_random(MIB - 1, 1)),
            ("exactly-1mib", pseudo_random(MIB, 2)),
            ("1mib-plus-1", pseudo_random(MIB + 1, 3)),
            ("three-and-a-bit-mib", pseudo_random(3 * MIB + 12_345, 4)),
            // Identical chunks: the same leaf linked several times.
            ("zeros", vec![0; 3 * MIB]),
        ];
        compare(&cases, ImportSettings::default()).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn same_cids_as_helia_for_multi_level_dags() {
    // Small chunks and fan-out build deep trees from small files, including levels that end
    // exactly full and a last group of one.
    tokio::time::timeout(Duration::from_secs(120), async {
        let s = ImportSettings { chunk_size: 1024, max_children: 4 };
        let cases = vec![
            ("16-chunks", pseudo_random(16 * 1024, 5)),
            ("17-chunks", pseudo_random(16 * 1024 + 1, 6)),
            ("64-chunks", pseudo_random(64 * 1024, 7)),
            ("99-and-a-bit", pseudo_random(99 * 1024 + 500, 8)),
        ];
        compare(&cases, s).await;
        // kubo's default fan-out (174), over 400 chunks: two levels of parents.
        let s = ImportSettings { chunk_size: 16 * 1024, max_children: 174 };
        compare(&[("fanout-174", pseudo_random(400 * 16 * 1024 + 3, 9))], s).await;
    })
    .await
    .expect("timed out");
}

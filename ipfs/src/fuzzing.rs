//! What the fuzz targets run (`ipfs/fuzz/`, with `cargo +nightly fuzz`), shared with the test
//! that runs the same bodies over mutated inputs in the ordinary suite. Each must return for any
//! input (an error is fine) and never panic, hang or allocate without bound.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::walk::{assemble, MemorySource};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime"))
}

/// Parses `data` as a CAR; if that works, walks the DAG under each root from its blocks, as the
/// gateway client would (hash checks included, writing to a temporary file).
pub fn car(data: &[u8]) {
    let Ok((roots, blocks)) = crate::car::parse_all(data) else { return };
    let blocks: HashMap<_, _> = blocks.into_iter().collect();
    for root in roots.iter().take(4) {
        let Ok(file) = tempfile::tempfile() else { return };
        let mut source = MemorySource(blocks.clone());
        let _ = runtime().block_on(assemble(root, &mut source, Arc::new(file), 1 << 30));
    }
}

/// Decodes `data` as a DAG-PB UnixFS file node.
pub fn dagpb(data: &[u8]) {
    if let Ok(node) = crate::dagpb::decode_file_node(data) {
        // Touch what a walk would use.
        let _ = node.links.iter().map(|l| l.content_bytes).fold(0u64, u64::wrapping_add);
    }
}

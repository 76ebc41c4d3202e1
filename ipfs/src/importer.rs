//! The UnixFS importer: bytes in, CID out, with the layout Helia's `unixfs.addFile`/`addBytes`
//! builds for the same settings (and kubo with the flags in the README): CIDv1, raw leaves,
//! fixed-size chunks, a balanced DAG-PB tree.
//!
//! It streams. Leaves are hashed as they are read and only the links of the unfinished parent at
//! each level are held, so memory is one chunk plus `max_children` links per tree level.

use std::io::{self, Read};

use crate::cid::{dag_pb_cid, raw_cid, Cid};
use crate::dagpb::{encode_file_node, Child};

/// How files are cut and linked. The defaults are the ones webaccel publishes models with; they
/// equal Helia's `unixfs-v1-2025` profile (IPIP-499).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSettings {
    pub chunk_size: usize,
    pub max_children: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings { chunk_size: 1024 * 1024, max_children: 1024 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input failed: {0}")]
    Read(#[source] io::Error),
    #[error("storing a block failed: {0}")]
    Sink(#[source] io::Error),
    #[error(
        "chunk_size must be between 1 byte and 2 MiB and max_children at least 2, not {chunk_size} and {max_children}"
    )]
    BadSettings { chunk_size: usize, max_children: usize },
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub cid: Cid,
    pub bytes: u64,
    pub blocks: u64,
}

/// Imports everything `reader` yields. `on_block` sees every block (leaves in file order, then
/// each parent after its children), for callers that keep blocks; most ignore them.
pub fn import(
    mut reader: impl Read,
    settings: ImportSettings,
    mut on_block: impl FnMut(&Cid, &[u8]) -> io::Result<()>,
) -> Result<Imported, ImportError> {
    // Above 2 MiB, gateways and the CAR reader refuse the blocks (a common 2 MiB block limit).
    if settings.chunk_size == 0 || settings.chunk_size > 2 * 1024 * 1024 || settings.max_children < 2 {
        return Err(ImportError::BadSettings { chunk_size: settings.chunk_size, max_children: settings.max_children });
    }
    let mut tree = Tree { levels: Vec::new(), max_children: settings.max_children, blocks: 0 };
    let mut chunk = vec![0u8; settings.chunk_size];
    let mut total = 0u64;
    let mut leaves = 0u64;
    loop {
        let n = read_full(&mut reader, &mut chunk).map_err(ImportError::Read)?;
        // An empty input is still one (empty) chunk, as Helia's fixed-size chunker yields.
        if n == 0 && leaves > 0 {
            break;
        }
        let cid = raw_cid(&chunk[..n]);
        on_block(&cid, &chunk[..n]).map_err(ImportError::Sink)?;
        tree.blocks += 1;
        leaves += 1;
        total += n as u64;
        tree.push(0, Child { cid, tsize: n as u64, content_bytes: n as u64 }, &mut on_block)?;
        if n < chunk.len() {
            break;
        }
    }
    // A file that fits one chunk is that raw leaf itself (Helia's reduceSingleLeafToSelf).
    let cid = if leaves == 1 { tree.levels[0][0].cid } else { tree.finish(&mut on_block)? };
    Ok(Imported { cid, bytes: total, blocks: tree.blocks })
}

/// The balanced layout built level by level: level 0 holds leaves, level k+1 the parents of
/// full groups at level k. This gives the same tree as Helia's recursive batching (groups of
/// `max_children` in order, then the groups' parents grouped again) without holding all leaves.
struct Tree {
    levels: Vec<Vec<Child>>,
    max_children: usize,
    blocks: u64,
}

impl Tree {
    fn push(
        &mut self,
        level: usize,
        child: Child,
        on_block: &mut impl FnMut(&Cid, &[u8]) -> io::Result<()>,
    ) -> Result<(), ImportError> {
        if self.levels.len() == level {
            self.levels.push(Vec::with_capacity(self.max_children));
        }
        self.levels[level].push(child);
        if self.levels[level].len() == self.max_children {
            let group = std::mem::take(&mut self.levels[level]);
            let parent = self.parent(&group, on_block)?;
            self.push(level + 1, parent, on_block)?;
        }
        Ok(())
    }

    /// Reduces what is left from the bottom up. A level's remainder becomes one parent unless it
    /// is a lone node with nothing above it: that node is the root.
    fn finish(&mut self, on_block: &mut impl FnMut(&Cid, &[u8]) -> io::Result<()>) -> Result<Cid, ImportError> {
        let mut level = 0;
        loop {
            let above = self.levels[level + 1..].iter().any(|l| !l.is_empty());
            let rest = std::mem::take(&mut self.levels[level]);
            if !above && rest.len() == 1 {
                return Ok(rest[0].cid);
            }
            if !rest.is_empty() {
                let parent = self.parent(&rest, on_block)?;
                if self.levels.len() == level + 1 {
                    self.levels.push(Vec::new());
                }
                // Not `push`: a remainder never fills the level above past max_children,
                // because that level was emptied whenever it filled.
                self.levels[level + 1].push(parent);
            }
            level += 1;
        }
    }

    fn parent(
        &mut self,
        children: &[Child],
        on_block: &mut impl FnMut(&Cid, &[u8]) -> io::Result<()>,
    ) -> Result<Child, ImportError> {
        // Helia leaves out links to empty children; only an empty file has one, and that file
        // is a single leaf, so every child here has content.
        let block = encode_file_node(children);
        let cid = dag_pb_cid(&block);
        on_block(&cid, &block).map_err(ImportError::Sink)?;
        self.blocks += 1;
        Ok(Child {
            cid,
            tsize: block.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
            content_bytes: children.iter().map(|c| c.content_bytes).sum(),
        })
    }
}

/// Fills `buf` unless the input ends first; returns how much it read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dagpb::decode_file_node;

    fn cid_of(bytes: &[u8], settings: ImportSettings) -> Imported {
        import(bytes, settings, |_, _| Ok(())).unwrap()
    }

    #[test]
    fn small_files_are_their_raw_leaf() {
        let s = ImportSettings::default();
        assert_eq!(cid_of(b"", s).cid, raw_cid(b""));
        assert_eq!(cid_of(b"hello", s).cid, raw_cid(b"hello"));
        let exact = vec![7u8; s.chunk_size];
        assert_eq!(cid_of(&exact, s), Imported { cid: raw_cid(&exact), bytes: exact.len() as u64, blocks: 1 });
    }

    #[test]
    fn tree_shape_for_small_fanout() {
        // 7 chunks, 3 children per node: leaves [3,3,1] -> parents P1 P2 P3 -> root over them.
        let s = ImportSettings { chunk_size: 4, max_children: 3 };
        let data: Vec<u8> = (0..27u8).collect();
        let mut blocks = Vec::new();
        let out = import(&data[..], s, |cid, bytes| {
            blocks.push((*cid, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(out.blocks, 7 + 3 + 1);
        let root = decode_file_node(&blocks.last().unwrap().1).unwrap();
        assert_eq!(blocks.last().unwrap().0, out.cid);
        assert_eq!(root.filesize, Some(27));
        assert_eq!(root.links.iter().map(|l| l.content_bytes).collect::<Vec<_>>(), [12, 12, 3]);
    }

    #[test]
    fn exactly_full_levels_have_no_extra_parent() {
        // 9 chunks with fanout 3: three full parents, one root; 4 chunks: a parent of 3 and a
        // parent of 1 under a root.
        let s = ImportSettings { chunk_size: 1, max_children: 3 };
        assert_eq!(cid_of(&[1; 9], s).blocks, 9 + 3 + 1);
        assert_eq!(cid_of(&[1; 4], s).blocks, 4 + 2 + 1);
        assert_eq!(cid_of(&[1; 3], s).blocks, 3 + 1);
    }

    #[test]
    fn bad_settings_are_explained() {
        let err = import(&b""[..], ImportSettings { chunk_size: 0, max_children: 3 }, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("chunk_size"), "{err}");
    }
}

//! The verifying walk: from a root CID, take blocks in depth-first order from a source (a CAR
//! stream or per-block requests), check each against its CID before using it, follow DAG-PB
//! links, and write the file's bytes to disk as they are verified.
//!
//! Memory stays bounded: a block is dropped once written, and what is kept is per block, not per
//! byte (the links still to visit, and where each finished subtree's bytes lie in the output,
//! so a repeated subtree, e.g. two identical chunks, is copied from disk rather than fetched
//! again or held in memory).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use crate::car::CarError;
use crate::cid::{check_supported, inline_block, verify, Cid, CidError, HashMismatch, DAG_PB};
use crate::dagpb::{decode_file_node, DagPbError, FileNode};

/// Why a source could not hand over the block the walk needed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http { status: u16, body: String },
    #[error("the gateway does not serve {what} (HTTP {status}, content-type {content_type:?})")]
    Unsupported { what: &'static str, status: u16, content_type: String },
    #[error("request failed: {0}")]
    Transport(String),
    #[error("no response within {0:?}")]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Car(#[from] CarError),
    #[error("the response ended before block {missing} arrived: truncated")]
    Ended { missing: Cid },
    #[error("the response was cut off inside a block ({detail}): truncated")]
    Cut { detail: String },
    #[error("block {got} arrived where {expected} was due: not depth-first order, or not this DAG")]
    Unexpected { got: Cid, expected: Cid },
    #[error("a block larger than {limit} bytes was refused")]
    TooLarge { limit: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// Boxed: a source error can carry two CIDs, and errors should stay small to return.
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Hash(#[from] HashMismatch),
    #[error("the response starts with block {got}, not the requested root: wrong root")]
    WrongRoot { got: Cid },
    #[error("block {cid}: {error}")]
    Node { cid: Cid, error: Box<DagPbError> },
    #[error(transparent)]
    Unsupported(#[from] CidError),
    #[error("block {cid} should hold {expected} bytes of the file but holds {actual}: a malformed DAG")]
    SizeMismatch { cid: Cid, expected: u64, actual: u64 },
    #[error("writing the file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the file declares {declared} bytes, more than the content store's limit of {limit} bytes; raise \
         WEBACCEL_IPFS_MAX_BYTES (e.g. 50G) to fetch it"
    )]
    TooLarge { declared: u64, limit: u64 },
    #[error(
        "the DAG expands past {limit} bytes (the content store's limit), more than it declares: a hostile or \
         malformed DAG (repeated subtrees count each time they appear)"
    )]
    Expands { limit: u64 },
}

impl From<SourceError> for WalkError {
    fn from(e: SourceError) -> Self {
        WalkError::Source(Box::new(e))
    }
}

/// Where blocks come from. `next` is asked for blocks in depth-first order; `received` holds
/// every CID the walk has already taken, so a source may skip repeats (a CAR with `dups=y`).
pub trait BlockSource {
    fn next(&mut self, cid: &Cid, received: &HashSet<Cid>) -> impl Future<Output = Result<Bytes, SourceError>> + Send;

    /// The walk will ask for these next, in this order, before anything announced earlier: the
    /// links of a node it just verified (minus inline blocks and blocks it already has). A source
    /// that requests blocks one by one can start on them early; a stream ignores this.
    fn upcoming(&mut self, _cids: &[Cid]) {}
}

/// What a finished walk wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    pub bytes: u64,
    pub blocks: u64,
}

enum Step {
    /// Fetch, verify and write this CID's subtree; `expected` is the parent's blocksize for it.
    Visit { cid: Cid, expected: Option<u64> },
    /// A node's children are all written: check its size and remember where its bytes are.
    Close { cid: Cid, start: u64, expected: Option<u64> },
}

/// Walks the DAG under `root`, writing the file to `out` (positioned writes from offset 0; the
/// caller gives an empty file). Nothing is written that did not match its CID, and nothing past
/// `limit` bytes: the root's declared size is checked against it before any byte is written,
/// and every byte the walk writes counts, each copy of a repeated subtree included, so that a
/// small DAG whose links repeat cannot fill the disk.
pub async fn assemble<S: BlockSource>(
    root: &Cid,
    source: &mut S,
    out: Arc<File>,
    limit: u64,
) -> Result<Walked, WalkError> {
    check_supported(root)?;
    let mut offset = 0u64;
    let mut blocks = 0u64;
    let mut received = HashSet::new();
    let mut done: HashMap<Cid, (u64, u64)> = HashMap::new();
    let mut stack = vec![Step::Visit { cid: *root, expected: None }];
    while let Some(step) = stack.pop() {
        match step {
            Step::Visit { cid, expected } => {
                if let Some(&(start, len)) = done.get(&cid) {
                    if offset.saturating_add(len) > limit {
                        return Err(WalkError::Expands { limit });
                    }
                    copy_within(&out, start, len, offset).await?;
                    offset += len;
                    check_size(&cid, expected, len)?;
                    continue;
                }
                check_supported(&cid)?;
                let bytes = match inline_block(&cid) {
                    Some(inline) => Bytes::copy_from_slice(inline),
                    None => source.next(&cid, &received).await.map_err(|e| match e {
                        // The very first block decides whether this is the DAG we asked for.
                        SourceError::Unexpected { got, .. } if blocks == 0 => WalkError::WrongRoot { got },
                        other => other.into(),
                    })?,
                };
                received.insert(cid);
                blocks += 1;
                // A leaf is written whole; a node writes only its inline data (checked below).
                if cid.codec() != DAG_PB && offset.saturating_add(bytes.len() as u64) > limit {
                    return Err(WalkError::Expands { limit });
                }
                let is_root = blocks == 1;
                match process(cid, bytes, out.clone(), offset, is_root.then_some(limit)).await? {
                    Processed::Leaf(len) => {
                        done.insert(cid, (offset, len));
                        offset += len;
                        check_size(&cid, expected, len)?;
                    }
                    Processed::Node(node) => {
                        let start = offset;
                        offset += node.inline.len() as u64;
                        if offset > limit {
                            return Err(WalkError::Expands { limit });
                        }
                        let expected = match (expected, node.filesize) {
                            (Some(e), _) => Some(e),
                            (None, claimed) => claimed,
                        };
                        if let (Some(from_parent), Some(claimed)) = (expected, node.filesize) {
                            check_size(&cid, Some(from_parent), claimed)?;
                        }
                        stack.push(Step::Close { cid, start, expected });
                        for link in node.links.iter().rev() {
                            stack.push(Step::Visit { cid: link.cid, expected: Some(link.content_bytes) });
                        }
                        let wanted: Vec<Cid> = node
                            .links
                            .iter()
                            .map(|link| link.cid)
                            .filter(|c| !received.contains(c) && inline_block(c).is_none())
                            .collect();
                        source.upcoming(&wanted);
                    }
                }
            }
            Step::Close { cid, start, expected } => {
                check_size(&cid, expected, offset - start)?;
                done.insert(cid, (start, offset - start));
            }
        }
    }
    Ok(Walked { bytes: offset, blocks })
}

fn check_size(cid: &Cid, expected: Option<u64>, actual: u64) -> Result<(), WalkError> {
    match expected {
        Some(expected) if expected != actual => Err(WalkError::SizeMismatch { cid: *cid, expected, actual }),
        _ => Ok(()),
    }
}

enum Processed {
    Leaf(u64),
    Node(FileNode),
}

/// Verifies a block and writes its content at `offset`: hashing a 1 MiB block and writing it
/// are blocking work, so they run off the async threads. For the root, `limit` is checked
/// against the size the node declares before anything is written.
async fn process(
    cid: Cid,
    bytes: Bytes,
    out: Arc<File>,
    offset: u64,
    limit: Option<u64>,
) -> Result<Processed, WalkError> {
    tokio::task::spawn_blocking(move || {
        verify(&cid, &bytes)?;
        if cid.codec() == DAG_PB {
            let node = decode_file_node(&bytes).map_err(|error| WalkError::Node { cid, error: Box::new(error) })?;
            if let (Some(limit), Some(declared)) = (limit, node.filesize) {
                if declared > limit {
                    return Err(WalkError::TooLarge { declared, limit });
                }
            }
            out.write_all_at(&node.inline, offset)?;
            Ok(Processed::Node(node))
        } else {
            out.write_all_at(&bytes, offset)?;
            Ok(Processed::Leaf(bytes.len() as u64))
        }
    })
    .await
    .map_err(|e| WalkError::Io(std::io::Error::other(e)))?
}

/// Copies `len` bytes already written at `from` to `to` (a repeated subtree).
async fn copy_within(out: &Arc<File>, from: u64, len: u64, to: u64) -> Result<(), WalkError> {
    let out = out.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut copied = 0;
        while copied < len {
            let n = (len - copied).min(buf.len() as u64) as usize;
            out.read_exact_at(&mut buf[..n], from + copied)?;
            out.write_all_at(&buf[..n], to + copied)?;
            copied += n as u64;
        }
        Ok(())
    })
    .await
    .map_err(|e| WalkError::Io(std::io::Error::other(e)))??;
    Ok(())
}

/// Blocks held in memory, served in any order: for tests and the fuzz target.
pub struct MemorySource(pub HashMap<Cid, Bytes>);

impl BlockSource for MemorySource {
    fn next(&mut self, cid: &Cid, _received: &HashSet<Cid>) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
        let found = self.0.get(cid).cloned().ok_or(SourceError::Ended { missing: *cid });
        async move { found }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::{import, ImportSettings};

    fn blocks_of(data: &[u8], settings: ImportSettings) -> (Cid, HashMap<Cid, Bytes>) {
        let mut blocks = HashMap::new();
        let out = import(data, settings, |cid, b| {
            blocks.insert(*cid, Bytes::copy_from_slice(b));
            Ok(())
        })
        .unwrap();
        (out.cid, blocks)
    }

    async fn walk(root: &Cid, blocks: HashMap<Cid, Bytes>) -> Result<Vec<u8>, WalkError> {
        let file = Arc::new(tempfile::tempfile().unwrap());
        let walked = assemble(root, &mut MemorySource(blocks), file.clone(), u64::MAX).await?;
        let mut back = vec![0u8; walked.bytes as usize];
        file.read_exact_at(&mut back, 0).unwrap();
        Ok(back)
    }

    #[tokio::test]
    async fn assembles_what_the_importer_built_including_repeated_chunks() {
        let s = ImportSettings { chunk_size: 16, max_children: 3 };
        // Repeated chunks make repeated leaves and (with fanout 3) a repeated subtree.
        let mut data = vec![9u8; 16 * 7];
        data.extend((0..100u8).collect::<Vec<_>>());
        let (root, blocks) = blocks_of(&data, s);
        assert_eq!(walk(&root, blocks).await.unwrap(), data);
        let (root, blocks) = blocks_of(b"", s);
        assert_eq!(walk(&root, blocks).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn a_swapped_block_is_caught() {
        let s = ImportSettings { chunk_size: 16, max_children: 3 };
        let data: Vec<u8> = (0..200u8).collect();
        let (root, mut blocks) = blocks_of(&data, s);
        let leaf = crate::cid::raw_cid(&data[16..32]);
        blocks.insert(leaf, Bytes::copy_from_slice(&data[32..48]));
        let err = walk(&root, blocks).await.unwrap_err();
        assert!(matches!(err, WalkError::Hash(HashMismatch { cid }) if cid == leaf), "{err}");
    }

    #[tokio::test]
    async fn a_dag_that_expands_past_the_limit_stops_there() {
        // An honest 100 kB subtree, then the same subtree again and again under links that
        // claim one byte each: the root declares 100015 bytes, the walk would write 1.6 MB.
        let leaf = vec![7u8; 1000];
        let leaf_cid = crate::cid::raw_cid(&leaf);
        let middle_children: Vec<_> =
            (0..100).map(|_| crate::dagpb::Child { cid: leaf_cid, tsize: 1000, content_bytes: 1000 }).collect();
        let middle = crate::dagpb::encode_file_node(&middle_children);
        let middle_cid = crate::cid::dag_pb_cid(&middle);
        let mut children = vec![crate::dagpb::Child { cid: middle_cid, tsize: 100_000, content_bytes: 100_000 }];
        children.extend((0..15).map(|_| crate::dagpb::Child { cid: middle_cid, tsize: 1, content_bytes: 1 }));
        let root = crate::dagpb::encode_file_node(&children);
        let root_cid = crate::cid::dag_pb_cid(&root);
        let blocks = HashMap::from([
            (root_cid, Bytes::from(root)),
            (middle_cid, Bytes::from(middle)),
            (leaf_cid, Bytes::from(leaf)),
        ]);
        let file = Arc::new(tempfile::tempfile().unwrap());
        let err = assemble(&root_cid, &mut MemorySource(blocks.clone()), file.clone(), 150_000).await.unwrap_err();
        assert!(matches!(err, WalkError::Expands { limit: 150_000 }), "{err}");
        assert!(file.metadata().unwrap().len() <= 150_000, "nothing was written past the limit");
        // A root declaring more than the limit is refused before anything is written.
        let small = Arc::new(tempfile::tempfile().unwrap());
        let err = assemble(&root_cid, &mut MemorySource(blocks), small.clone(), 10).await.unwrap_err();
        assert!(matches!(err, WalkError::TooLarge { declared: 100_015, limit: 10 }), "{err}");
        assert_eq!(small.metadata().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn a_lying_blocksize_is_caught() {
        // A parent whose blocksize for a child disagrees with the child's content.
        let leaf = b"abc";
        let children = [crate::dagpb::Child { cid: crate::cid::raw_cid(leaf), tsize: 3, content_bytes: 4 }];
        let node = crate::dagpb::encode_file_node(&children);
        let root = crate::cid::dag_pb_cid(&node);
        let blocks = HashMap::from([(root, Bytes::from(node)), (children[0].cid, Bytes::from_static(leaf))]);
        let err = walk(&root, blocks).await.unwrap_err();
        assert!(matches!(err, WalkError::SizeMismatch { expected: 4, actual: 3, .. }), "{err}");
    }
}

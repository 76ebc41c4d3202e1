//! DAG-PB nodes that hold UnixFS files: decoding what a gateway sent (untrusted until its hash
//! matched, and even then possibly nonsense) and encoding what the importer builds.
//!
//! The DAG-PB codec itself is `ipld-dagpb` (the IPLD project's crate). prost is not used for the
//! outer node because DAG-PB's canonical form writes Links (tag 2) before Data (tag 1), which a
//! generic protobuf encoder, writing tags in ascending order, does not.

use bytes::Bytes;
use ipld_dagpb::{PbLink, PbNode};

use crate::cid::Cid;
use crate::unixfs::{Data, DataType};

#[derive(Debug, thiserror::Error)]
pub enum DagPbError {
    #[error("not a valid DAG-PB node: {0}")]
    Codec(String),

    #[error("a DAG-PB node without UnixFS data: not a UnixFS file")]
    NoUnixFsData,

    #[error("not valid UnixFS data: {0}")]
    UnixFs(String),

    #[error("it is {0}, not a file; give the CID of a file")]
    NotAFile(&'static str),

    #[error("UnixFS data without a type")]
    NoType,

    #[error("it has {links} links but {blocksizes} blocksizes")]
    SizesMismatch { links: usize, blocksizes: usize },
}

/// One link of a file node: the child's CID and how many content bytes lie under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    pub cid: Cid,
    pub content_bytes: u64,
}

/// A decoded UnixFS file node: content bytes of its own (often none), then its children's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNode {
    pub inline: Bytes,
    pub links: Vec<FileLink>,
    /// The total the node claims (`filesize`), checked against what its children produce.
    pub filesize: Option<u64>,
}

/// Decodes a DAG-PB block that must be a UnixFS file (or raw) node.
pub fn decode_file_node(block: &[u8]) -> Result<FileNode, DagPbError> {
    let node = PbNode::from_bytes(Bytes::copy_from_slice(block)).map_err(|e| DagPbError::Codec(e.to_string()))?;
    let data = node.data.ok_or(DagPbError::NoUnixFsData)?;
    let unixfs = Data::decode(&data).map_err(|e| DagPbError::UnixFs(e.to_string()))?;
    match unixfs.kind() {
        Some(DataType::File) | Some(DataType::Raw) => {}
        Some(other) => return Err(DagPbError::NotAFile(other.describe())),
        None => return Err(DagPbError::NoType),
    }
    // blocksizes may be omitted by old encoders only when there are no links.
    if !unixfs.blocksizes.is_empty() && unixfs.blocksizes.len() != node.links.len()
        || unixfs.blocksizes.is_empty() && !node.links.is_empty()
    {
        return Err(DagPbError::SizesMismatch { links: node.links.len(), blocksizes: unixfs.blocksizes.len() });
    }
    let links = node
        .links
        .into_iter()
        .zip(unixfs.blocksizes.iter())
        .map(|(link, &content_bytes)| FileLink { cid: link.cid, content_bytes })
        .collect();
    Ok(FileNode { inline: Bytes::from(unixfs.data.unwrap_or_default()), links, filesize: unixfs.filesize })
}

/// A child as the importer links it: CID, the size of everything under it (`Tsize`: its own
/// block plus its descendants' blocks), and its content bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub cid: Cid,
    pub tsize: u64,
    pub content_bytes: u64,
}

/// Encodes a file node over `children` exactly as Helia's importer does: every link has an
/// empty Name (Helia writes `Name: ''`, which is encoded, not omitted) and a Tsize.
pub fn encode_file_node(children: &[Child]) -> Vec<u8> {
    let data = Data::file(children.iter().map(|c| c.content_bytes).collect());
    let node = PbNode {
        links: children.iter().map(|c| PbLink { cid: c.cid, name: Some(String::new()), size: Some(c.tsize) }).collect(),
        data: Some(Bytes::from(data.encode())),
    };
    node.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::raw_cid;

    #[test]
    fn encode_then_decode() {
        let children = [
            Child { cid: raw_cid(b"a"), tsize: 1, content_bytes: 1 },
            Child { cid: raw_cid(b"bc"), tsize: 2, content_bytes: 2 },
        ];
        let node = decode_file_node(&encode_file_node(&children)).unwrap();
        assert_eq!(node.filesize, Some(3));
        assert_eq!(
            node.links.iter().map(|l| (l.cid, l.content_bytes)).collect::<Vec<_>>(),
            [(children[0].cid, 1), (children[1].cid, 2)]
        );
        assert!(node.inline.is_empty());
    }

    #[test]
    fn rejects_directories_and_garbage() {
        let dir = PbNode { links: vec![], data: Some(Bytes::from(vec![0x08, 0x01])) }.into_bytes();
        assert!(matches!(decode_file_node(&dir), Err(DagPbError::NotAFile("a directory"))));
        assert!(matches!(decode_file_node(&[0xff, 0xff, 0xff]), Err(DagPbError::Codec(_))));
        assert!(matches!(decode_file_node(&[]), Err(DagPbError::NoUnixFsData)));
    }
}

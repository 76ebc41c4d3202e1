//! The UnixFS `Data` message that sits in a DAG-PB node's Data field and says what the node is
//! (a file, a directory, …) and how big its parts are.
//!
//! prost derives the codec from the struct below (no .proto build step). Field order and
//! encoding must match Helia byte for byte, or the importer's CIDs would differ: prost writes
//! fields by ascending tag as Helia's generated code does, writes `blocksizes` unpacked (proto2,
//! as UnixFS declares it), and omits fields that are `None`.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct Data {
    /// Always set by real encoders; an absent Type is treated as malformed.
    #[prost(enumeration = "DataType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// Inline file bytes (leaves of DAGs built without raw leaves, e.g. kubo's CIDv0 default).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
    /// Total content bytes under this node.
    #[prost(uint64, optional, tag = "3")]
    pub filesize: Option<u64>,
    /// Content bytes under each link, in link order.
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    pub blocksizes: Vec<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub hash_type: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub fanout: Option<u64>,
    #[prost(uint32, optional, tag = "7")]
    pub mode: Option<u32>,
    // Tag 8 (mtime) is skipped on decode as an unknown field; the importer writes none.
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl DataType {
    pub fn describe(self) -> &'static str {
        match self {
            DataType::Raw => "raw data",
            DataType::Directory => "a directory",
            DataType::File => "a file",
            DataType::Metadata => "metadata",
            DataType::Symlink => "a symlink",
            DataType::HamtShard => "a sharded directory",
        }
    }
}

impl Data {
    /// A file node over children whose content sizes are `blocksizes`, as Helia's balanced
    /// builder writes it: Type, filesize (the sum) and one blocksize per link.
    pub fn file(blocksizes: Vec<u64>) -> Self {
        Data {
            r#type: Some(DataType::File as i32),
            filesize: Some(blocksizes.iter().sum()),
            blocksizes,
            ..Default::default()
        }
    }

    /// The node's type; None when absent or a number UnixFS does not define.
    pub fn kind(&self) -> Option<DataType> {
        self.r#type.and_then(|t| DataType::try_from(t).ok())
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        <Self as Message>::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_node_encoding_matches_the_unixfs_wire_format() {
        // Type=File (08 02), filesize=3 (18 03), blocksizes 1 and 2 unpacked (20 01 20 02).
        assert_eq!(Data::file(vec![1, 2]).encode(), [0x08, 0x02, 0x18, 0x03, 0x20, 0x01, 0x20, 0x02]);
        let back = Data::decode(&[0x08, 0x02, 0x18, 0x03, 0x20, 0x01, 0x20, 0x02]).unwrap();
        assert_eq!((back.kind(), back.filesize, back.blocksizes), (Some(DataType::File), Some(3), vec![1, 2]));
        // Packed blocksizes (another encoder's choice) decode the same.
        let packed = Data::decode(&[0x08, 0x02, 0x22, 0x02, 0x01, 0x02]).unwrap();
        assert_eq!(packed.blocksizes, vec![1, 2]);
    }
}

//! CIDs: parsing with errors a person can act on, the codecs and hashes this crate handles, and
//! checking a block's bytes against its CID.

pub use ::cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

/// Multicodec of a raw block: the bytes are file content.
pub const RAW: u64 = 0x55;
/// Multicodec of a DAG-PB block: a UnixFS node that links to other blocks.
pub const DAG_PB: u64 = 0x70;
/// Multihash of an identity "hash": the digest is the data itself (tiny inline blocks; the
/// trustless gateway spec keeps them out of CARs, so a client must expand them itself).
const IDENTITY: u64 = 0x00;
const SHA2_256: u64 = 0x12;
/// The largest identity digest we accept; anything bigger is not a plausible inline block.
const MAX_IDENTITY_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CidError {
    #[error("'{text}' is not a CID ({reason}); a CID looks like bafy… (CIDv1) or Qm… (CIDv0)")]
    Malformed { text: String, reason: String },

    #[error("CID {cid} has codec 0x{codec:x}; only UnixFS files (dag-pb, 0x70) and raw blocks (0x55) are supported")]
    UnsupportedCodec { cid: Cid, codec: u64 },

    #[error("CID {cid} uses multihash 0x{code:x} ({size} bytes); only sha2-256 (0x12, 32 bytes) is supported")]
    UnsupportedHash { cid: Cid, code: u64, size: u8 },
}

/// Parses a CID as a person would type it (surrounding whitespace and an `/ipfs/` or `ipfs://`
/// prefix are forgiven) and checks that this crate can verify and assemble it.
pub fn parse(text: &str) -> Result<Cid, CidError> {
    let trimmed = text.trim();
    let bare = trimmed.strip_prefix("ipfs://").or_else(|| trimmed.strip_prefix("/ipfs/")).unwrap_or(trimmed);
    let cid = Cid::try_from(bare).map_err(|e| CidError::Malformed { text: text.to_string(), reason: e.to_string() })?;
    check_supported(&cid)?;
    Ok(cid)
}

/// A CID the walker can fetch, verify and interpret.
pub fn check_supported(cid: &Cid) -> Result<(), CidError> {
    if cid.codec() != RAW && cid.codec() != DAG_PB {
        return Err(CidError::UnsupportedCodec { cid: *cid, codec: cid.codec() });
    }
    let hash = cid.hash();
    let ok = match hash.code() {
        SHA2_256 => hash.size() == 32,
        IDENTITY => hash.digest().len() <= MAX_IDENTITY_LEN,
        _ => false,
    };
    if !ok {
        return Err(CidError::UnsupportedHash { cid: *cid, code: hash.code(), size: hash.size() });
    }
    Ok(())
}

/// The bytes of an identity CID (which carries its block inline), or None for a hashed one.
pub fn inline_block(cid: &Cid) -> Option<&[u8]> {
    (cid.hash().code() == IDENTITY).then(|| cid.hash().digest())
}

/// The CIDv1 of a raw block (a file chunk).
pub fn raw_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(RAW, Code::Sha2_256.digest(bytes))
}

/// The CIDv1 of a DAG-PB block.
pub fn dag_pb_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(DAG_PB, Code::Sha2_256.digest(bytes))
}

/// A block whose bytes are not what its CID commits to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {cid} does not match its CID (its bytes hash to a different digest): tampered or corrupted")]
pub struct HashMismatch {
    pub cid: Cid,
}

/// Checks `bytes` against `cid`'s multihash. The caller has checked the CID with
/// [`check_supported`]; an unsupported hash is reported as a mismatch rather than trusted.
pub fn verify(cid: &Cid, bytes: &[u8]) -> Result<(), HashMismatch> {
    let hash = cid.hash();
    let matches = match hash.code() {
        SHA2_256 => Code::Sha2_256.digest(bytes) == *hash,
        IDENTITY => hash.digest() == bytes,
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(HashMismatch { cid: *cid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cid_of_the_empty_raw_block() {
        // The well-known CIDv1 of zero bytes (what kubo and Helia print for an empty file).
        assert_eq!(raw_cid(b"").to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    }

    #[test]
    fn parse_forgives_prefixes_and_explains_garbage() {
        let text = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        assert_eq!(parse(&format!(" /ipfs/{text}\n")).unwrap().to_string(), text);
        assert_eq!(parse(&format!("ipfs://{text}")).unwrap().to_string(), text);
        let err = parse("bafy-not-a-cid").unwrap_err().to_string();
        assert!(err.contains("'bafy-not-a-cid' is not a CID"), "{err}");
        // CIDv0 (dag-pb, sha2-256) is fine.
        parse("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").unwrap();
    }

    #[test]
    fn parse_rejects_codecs_we_cannot_assemble() {
        // dag-cbor (0x71): a valid CID, but not a file.
        let cbor = Cid::new_v1(0x71, Code::Sha2_256.digest(b"x")).to_string();
        let err = parse(&cbor).unwrap_err().to_string();
        assert!(err.contains("codec 0x71"), "{err}");
    }

    #[test]
    fn verify_catches_a_flipped_bit() {
        let cid = raw_cid(b"hello");
        verify(&cid, b"hello").unwrap();
        assert_eq!(verify(&cid, b"hellp"), Err(HashMismatch { cid }));
        let inline = Cid::new_v1(RAW, multihash_codetable::Multihash::wrap(IDENTITY, b"hi").unwrap());
        assert_eq!(inline_block(&inline), Some(&b"hi"[..]));
        verify(&inline, b"hi").unwrap();
        assert!(verify(&inline, b"ho").is_err());
    }
}

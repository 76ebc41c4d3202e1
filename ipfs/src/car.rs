//! CAR v1 streams (the trustless gateway's `application/vnd.ipld.car`): a DAG-CBOR header,
//! then length-prefixed (CID, block) frames.
//!
//! Parsing is `iroh-car`'s: it reads one frame at a time and refuses frames over 4 MiB, so a
//! hostile length prefix cannot make us allocate more. This module adds typed errors and
//! `Bytes` blocks. Nothing here trusts a block: the walker checks each against its CID.

use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::cid::Cid;

#[derive(Debug, thiserror::Error)]
pub enum CarError {
    #[error("not a valid CAR v1 stream: {0}")]
    Malformed(String),
    #[error("reading the CAR stream failed: {0}")]
    Io(#[source] std::io::Error),
}

impl From<iroh_car::Error> for CarError {
    fn from(e: iroh_car::Error) -> Self {
        match e {
            iroh_car::Error::Io(io) => CarError::Io(io),
            // iroh-car turns a failed read inside a frame into a parsing error; the message
            // says which ("early eof" for a cut stream).
            other => CarError::Malformed(other.to_string()),
        }
    }
}

pub struct CarReader<R> {
    inner: iroh_car::CarReader<R>,
}

impl<R: AsyncRead + Unpin> CarReader<R> {
    /// Reads the header. `reader` should be buffered: frames' varints are read a byte at a time.
    pub async fn new(reader: R) -> Result<Self, CarError> {
        let inner = iroh_car::CarReader::new(reader).await?;
        Ok(CarReader { inner })
    }

    /// The header's roots. The trustless gateway spec tells clients to ignore them (gateways
    /// differ), so the walker judges a stream by its blocks, not by this.
    pub fn roots(&self) -> &[Cid] {
        self.inner.header().roots()
    }

    /// The next frame, or None at a clean end of the stream.
    pub async fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        Ok(self.inner.next_block().await?.map(|(cid, bytes)| (cid, Bytes::from(bytes))))
    }
}

/// A whole CAR: header roots, then every (CID, block) frame in order.
pub type Parsed = (Vec<Cid>, Vec<(Cid, Bytes)>);

/// Parses a whole CAR held in memory: header roots and every frame. For tests and the fuzz
/// target; the gateway client streams instead.
pub fn parse_all(bytes: &[u8]) -> Result<Parsed, CarError> {
    futures::executor::block_on(async {
        let mut reader = CarReader::new(bytes).await?;
        let roots = reader.roots().to_vec();
        let mut blocks = Vec::new();
        while let Some(block) = reader.next_block().await? {
            blocks.push(block);
        }
        Ok((roots, blocks))
    })
}

/// Writes a CAR v1 (header with `root`, then `blocks` in order). Tests and the benchmark use it
/// to build streams; the header's DAG-CBOR is iroh-car's.
pub fn write(root: Cid, blocks: &[(Cid, Vec<u8>)]) -> Result<Vec<u8>, CarError> {
    futures::executor::block_on(async {
        let mut out = Vec::new();
        let mut writer = iroh_car::CarWriter::new(iroh_car::CarHeader::new_v1(vec![root]), &mut out);
        writer.write_header().await?;
        for (cid, data) in blocks {
            writer.write(*cid, data).await?;
        }
        writer.finish().await?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::raw_cid;

    #[test]
    fn round_trip_and_errors() {
        let (a, b) = (b"first".to_vec(), b"second".to_vec());
        let blocks = vec![(raw_cid(&a), a), (raw_cid(&b), b)];
        let car = write(blocks[0].0, &blocks).unwrap();
        let (roots, parsed) = parse_all(&car).unwrap();
        assert_eq!(roots, [blocks[0].0]);
        assert_eq!(parsed.iter().map(|(c, d)| (*c, d.to_vec())).collect::<Vec<_>>(), blocks);

        assert!(parse_all(b"").is_err());
        assert!(parse_all(b"\x05hello").is_err());
        // A frame that claims 1 GiB is refused, not allocated.
        let mut huge = write(blocks[0].0, &[]).unwrap();
        huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04]);
        assert!(matches!(parse_all(&huge), Err(CarError::Malformed(m)) if m.contains("too large")));
        // A cut inside a frame is an error, not a short block.
        assert!(parse_all(&car[..car.len() - 2]).is_err());
    }
}

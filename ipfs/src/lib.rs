//! Content-addressed model files for webaccel: CIDs, the UnixFS importer, a verifying client for
//! trustless IPFS gateways, and the local content store.
//!
//! # Using it from the rest of webaccel
//!
//! One [`Resolver`] per process (it is `Send + Sync`; share it in an `Arc`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), webaccel_ipfs::Error> {
//! let ipfs = webaccel_ipfs::Resolver::open_default()?;
//! let cid = webaccel_ipfs::parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")?;
//! let resolved = ipfs.resolve(&cid).await?; // a store hit, or a verified fetch that is then stored
//! let path = resolved.path;                  // hand this to browser-runtime
//! let row = resolved.record;                 // cid, gateway, cache_hit, bytes, ms, verified, via, …
//! # let _ = (path, row); Ok(()) }
//! ```
//!
//! - [`Resolver::resolve`] never returns unverified bytes: a miss streams the DAG from the
//!   gateways (in order; see [`GatewayConfig`]) through the verifying walk into a temporary
//!   file, and only a complete, verified file is renamed into the store.
//! - [`Resolver::cached`] answers from the store only (no network).
//! - [`Resolver::add`] computes a file's CID (CIDv1, raw leaves, 1 MiB chunks, balanced DAG-PB
//!   with up to 1024 links per node: Helia's `unixfs-v1-2025` settings) and stores a copy.
//! - [`Resolver::stats`]: what the store holds and this process's hits and misses.
//!
//! Settings come from the environment: `WEBACCEL_IPFS_DIR` (store directory, default
//! `<cache>/webaccel/ipfs`), `WEBACCEL_IPFS_MAX_BYTES` (LRU limit, default 20 GiB),
//! `WEBACCEL_GATEWAYS` (comma-separated gateway URLs).
//!
//! # Inside
//!
//! `cid` (parse, hash, verify) · `unixfs` + `dagpb` (node codecs) · `importer` · `car` (CAR v1
//! reading) · `walk` (the verifying depth-first walk) · `gateway` (HTTP, retries, fallback) · `raw_blocks`
//! (the per-block fallback, several requests in flight) ·
//! `store` (atomic, LRU) · `resolver` (the facade above).

pub mod car;
pub mod cid;
pub mod dagpb;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod importer;
pub mod raw_blocks;
pub mod resolver;
pub mod store;
pub mod unixfs;
pub mod walk;

pub use crate::cid::{parse as parse_cid, Cid, CidError};
pub use gateway::{FetchError, GatewayConfig, Via, DEFAULT_GATEWAYS};
pub use importer::{ImportSettings, Imported};
pub use resolver::{AddRecord, FetchRecord, Resolved, Resolver, ResolverStats};
pub use store::{Store, StoreError, StoreStats};

/// Everything the crate's public API can fail with; each message says what was wrong and, where
/// a person can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cid(#[from] CidError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(FetchError),
}

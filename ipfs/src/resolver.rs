//! CID → local file: the store first, then the gateways. This is what the rest of webaccel calls.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cid::Cid;
use crate::gateway::{FetchError, GatewayClient, GatewayConfig};
use crate::importer::ImportSettings;
use crate::store::{Store, StoreError, StoreStats};
use crate::Error;

/// What one resolve did: the figures a run row records.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FetchRecord {
    pub cid: String,
    /// The gateway that served it; None on a cache hit.
    pub gateway: Option<String>,
    pub cache_hit: bool,
    /// Size of the file.
    pub bytes: u64,
    /// Wall time of the resolve, store lookup included.
    pub ms: f64,
    /// Whether this call checked the bytes against the CID: true for every fetch (an
    /// unverifiable one fails instead). A cache hit is not re-hashed, so false: the store only
    /// ever admitted verified files, but it does not re-prove that on each read.
    pub verified: bool,
    /// "cache", "car" or "raw".
    pub via: &'static str,
    /// Blocks received (0 on a cache hit).
    pub blocks: u64,
    /// Gateway failures before success (fallbacks, and retries folded as "(N tries)"), each
    /// naming gateway and CID.
    pub failures: Vec<String>,
}

/// A resolved CID: where the file is, and how it got there.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathBuf,
    pub record: FetchRecord,
}

/// An `add`: the CID of a local file, now in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AddRecord {
    pub cid: String,
    pub bytes: u64,
    pub blocks: u64,
    pub path: PathBuf,
    pub ms: f64,
}

/// The store's contents plus this process's hit/miss counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverStats {
    pub store: StoreStats,
    pub hits: u64,
    pub misses: u64,
    pub fetched_bytes: u64,
    pub gateways: Vec<String>,
}

pub struct Resolver {
    store: Store,
    client: GatewayClient,
    hits: AtomicU64,
    misses: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl Resolver {
    pub fn new(store: Store, config: GatewayConfig) -> Result<Self, Error> {
        Ok(Resolver {
            store,
            client: GatewayClient::new(config)?,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        })
    }

    /// The default store (`WEBACCEL_IPFS_DIR`, `WEBACCEL_IPFS_MAX_BYTES`) and gateways
    /// (`WEBACCEL_GATEWAYS`, else the public trustless gateways).
    pub fn open_default() -> Result<Self, Error> {
        Resolver::new(Store::open_default()?, GatewayConfig::from_env()?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn gateway_config(&self) -> &GatewayConfig {
        self.client.config()
    }

    /// A resolver on the same store with other gateways (for a call that names its own); its
    /// hit and miss counts start at zero.
    pub fn with_gateways(&self, config: GatewayConfig) -> Result<Self, Error> {
        Resolver::new(self.store.clone(), config)
    }

    /// The file for `cid` if the store has it, without touching the network.
    pub async fn cached(&self, cid: &Cid) -> Result<Option<Resolved>, Error> {
        let t0 = Instant::now();
        let store = self.store.clone();
        let cid = *cid;
        let path = tokio::task::spawn_blocking(move || store.get(&cid)).await.map_err(join_error)?;
        let Some(path) = path else { return Ok(None) };
        self.hits.fetch_add(1, Ordering::Relaxed);
        let bytes = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
        let record = FetchRecord {
            cid: cid.to_string(),
            gateway: None,
            cache_hit: true,
            bytes,
            ms: t0.elapsed().as_secs_f64() * 1000.0,
            verified: false,
            via: "cache",
            blocks: 0,
            failures: Vec::new(),
        };
        Ok(Some(Resolved { path, record }))
    }

    /// The file for `cid`: from the store, or fetched, verified and stored.
    pub async fn resolve(&self, cid: &Cid) -> Result<Resolved, Error> {
        let t0 = Instant::now();
        if let Some(mut hit) = self.cached(cid).await? {
            hit.record.ms = t0.elapsed().as_secs_f64() * 1000.0;
            return Ok(hit);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        crate::cid::check_supported(cid)?;
        let pending = self.store.begin()?;
        let out =
            Arc::new(pending.handle().map_err(|source| StoreError::Io { path: self.store.dir().join("tmp"), source })?);
        let fetched = self.client.fetch_into(cid, out, self.store.max_bytes()).await?;
        let cid_copy = *cid;
        let path = tokio::task::spawn_blocking(move || pending.commit(&cid_copy)).await.map_err(join_error)??;
        self.fetched_bytes.fetch_add(fetched.walked.bytes, Ordering::Relaxed);
        let record = FetchRecord {
            cid: cid.to_string(),
            gateway: Some(fetched.gateway),
            cache_hit: false,
            bytes: fetched.walked.bytes,
            ms: t0.elapsed().as_secs_f64() * 1000.0,
            verified: true,
            via: fetched.via.name(),
            blocks: fetched.walked.blocks,
            failures: crate::gateway::folded(&fetched.failures),
        };
        Ok(Resolved { path, record })
    }

    /// Imports a local file with the default settings and stores it. Blocking (it reads and
    /// hashes the whole file): call it off the async threads.
    pub fn add(&self, path: &Path) -> Result<AddRecord, Error> {
        let t0 = Instant::now();
        let (imported, stored) = self.store.add_file(path, ImportSettings::default())?;
        Ok(AddRecord {
            cid: imported.cid.to_string(),
            bytes: imported.bytes,
            blocks: imported.blocks,
            path: stored,
            ms: t0.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            store: self.store.stats(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            fetched_bytes: self.fetched_bytes.load(Ordering::Relaxed),
            gateways: self.client.config().gateways.clone(),
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Store(StoreError::Io { path: PathBuf::new(), source: std::io::Error::other(e) })
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        Error::Fetch(e)
    }
}

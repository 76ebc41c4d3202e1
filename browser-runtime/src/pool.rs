//! Warm browser sessions, one per browser kind, launched on first use. A session whose browser
//! died (or whose page crashed or hung) is dropped and relaunched transparently on the next call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::assets::AssetServer;
use crate::capabilities::Capabilities;
use crate::error::Result;
use crate::launch::BrowserKind;
use crate::session::{BrowserSession, PageSettings};

/// A live session and the capabilities measured when it was opened.
pub struct PooledBrowser {
    pub session: BrowserSession,
    pub capabilities: Capabilities,
}

pub struct BrowserPool {
    ort_dir: PathBuf,
    assets: OnceCell<Arc<AssetServer>>,
    settings: PageSettings,
    browsers: Mutex<HashMap<BrowserKind, Arc<PooledBrowser>>>,
}

impl BrowserPool {
    pub fn new(ort_dir: PathBuf, settings: PageSettings) -> Self {
        BrowserPool { ort_dir, assets: OnceCell::new(), settings, browsers: Mutex::new(HashMap::new()) }
    }

    async fn assets(&self) -> Result<Arc<AssetServer>> {
        self.assets
            .get_or_try_init(|| async { AssetServer::start(&self.ort_dir).await.map(Arc::new) })
            .await
            .cloned()
    }

    /// A live session for `kind`, launching (or relaunching) it when needed.
    pub async fn get(&self, kind: BrowserKind) -> Result<Arc<PooledBrowser>> {
        let mut browsers = self.browsers.lock().await;
        if let Some(existing) = browsers.get(&kind) {
            if existing.session.is_alive() {
                return Ok(existing.clone());
            }
            tracing::info!(browser = kind.name(), "browser is gone; launching a fresh one");
            browsers.remove(&kind);
        }
        let session = BrowserSession::open(kind, self.assets().await?, self.settings.clone()).await?;
        let capabilities = session.capabilities().await?;
        let pooled = Arc::new(PooledBrowser { session, capabilities });
        browsers.insert(kind, pooled.clone());
        Ok(pooled)
    }

    /// The session for `kind` if one is held, without launching.
    pub async fn peek(&self, kind: BrowserKind) -> Option<Arc<PooledBrowser>> {
        self.browsers.lock().await.get(&kind).cloned()
    }

    /// Profile directories of the browsers currently held (for leak checks).
    pub async fn profile_dirs(&self) -> Vec<PathBuf> {
        self.browsers.lock().await.values().map(|b| b.session.profile_dir().to_path_buf()).collect()
    }

    /// Closes every browser. Sessions still borrowed elsewhere are killed when dropped.
    pub async fn shutdown(&self) {
        let drained: Vec<_> = self.browsers.lock().await.drain().map(|(_, b)| b).collect();
        for pooled in drained {
            match Arc::try_unwrap(pooled) {
                Ok(pooled) => pooled.session.shutdown().await,
                Err(shared) => drop(shared),
            }
        }
    }
}

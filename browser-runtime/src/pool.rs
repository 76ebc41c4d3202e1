//! Warm browser sessions, keyed by browser and extra launch flags, launched on first use.
//! A session whose browser died (or whose page crashed or hung) is dropped and relaunched
//! transparently on the next call. Idle browsers are closed after a timeout, and at most
//! `max_connections` run at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as SyncMutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OnceCell};

use crate::assets::AssetServer;
use crate::capabilities::Capabilities;
use crate::error::{BrowserError, Result};
use crate::grid::{GridConfig, Slot};
use crate::launch::{sweep_stale_profiles, BrowserKind, ProfileChoice};
use crate::session::{BrowserSession, PageSettings};

/// A browser as scripts name it: one this machine launches, or a Selenium Grid slot
/// (`grid:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BrowserTarget {
    Local(BrowserKind),
    Remote(String),
}

impl BrowserTarget {
    pub fn parse(name: &str) -> Option<Self> {
        match name.strip_prefix("grid:") {
            Some(slot) if !slot.is_empty() => Some(BrowserTarget::Remote(slot.to_string())),
            Some(_) => None,
            None => BrowserKind::parse(name).map(BrowserTarget::Local),
        }
    }

    pub fn name(&self) -> String {
        match self {
            BrowserTarget::Local(kind) => kind.name().to_string(),
            BrowserTarget::Remote(slot) => format!("grid:{slot}"),
        }
    }
}

impl From<BrowserKind> for BrowserTarget {
    fn from(kind: BrowserKind) -> Self {
        BrowserTarget::Local(kind)
    }
}

/// Which warm browser a call wants: the browser, and any extra switches (sorted, so the same
/// set in another order is the same browser).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrowserKey {
    pub target: BrowserTarget,
    pub extra_flags: Vec<String>,
    pub profile: ProfileChoice,
}

impl BrowserKey {
    pub fn new(target: impl Into<BrowserTarget>, mut extra_flags: Vec<String>, profile: ProfileChoice) -> Self {
        extra_flags.sort();
        extra_flags.dedup();
        BrowserKey { target: target.into(), extra_flags, profile }
    }

    pub fn plain(target: impl Into<BrowserTarget>) -> Self {
        BrowserKey { target: target.into(), extra_flags: Vec::new(), profile: ProfileChoice::Fresh }
    }

    pub fn name(&self) -> String {
        self.target.name()
    }
}

/// A live session and the capabilities measured when it was opened.
pub struct PooledBrowser {
    pub key: BrowserKey,
    pub session: BrowserSession,
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolLimits {
    /// Browsers running at once; launching one more closes the least recently used idle one.
    pub max_connections: usize,
    /// A browser unused this long is closed (its next call relaunches it).
    pub idle_timeout: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits { max_connections: 4, idle_timeout: Duration::from_secs(300) }
    }
}

struct Entry {
    pooled: Arc<PooledBrowser>,
    last_used: Instant,
}

pub struct BrowserPool {
    ort_dir: PathBuf,
    /// The Selenium Grid hubs remote slots come from (none by default: `WEBACCEL_GRID`).
    grid: SyncMutex<GridConfig>,
    http: std::sync::OnceLock<reqwest::Client>,
    assets: OnceCell<Arc<AssetServer>>,
    settings: PageSettings,
    limits: SyncMutex<PoolLimits>,
    browsers: Mutex<HashMap<BrowserKey, Entry>>,
    /// One lock per key while it launches: two calls for the same browser wait for one launch,
    /// while different browsers (this machine's and Grid nodes') launch at the same time.
    launching: SyncMutex<HashMap<BrowserKey, Arc<Mutex<()>>>>,
    reaper: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
    /// Held for the whole of a shutdown, so a second one (a signal arriving while the kernel
    /// is already closing) waits for the first to finish instead of returning early.
    closing: Mutex<()>,
    /// Browsers given up (`discard`) and still closing; a shutdown waits for them.
    retiring: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl BrowserPool {
    pub fn new(ort_dir: PathBuf, settings: PageSettings) -> Arc<Self> {
        // Profiles of webaccel processes that were killed outright (kill -9) would otherwise
        // pile up in the temp directory.
        sweep_stale_profiles(Duration::from_secs(60));
        let grid = GridConfig::from_env().unwrap_or_else(|e| {
            tracing::warn!("ignoring WEBACCEL_GRID / WEBACCEL_ADVERTISE: {e}");
            GridConfig::default()
        });
        Arc::new(BrowserPool {
            ort_dir,
            grid: SyncMutex::new(grid),
            http: std::sync::OnceLock::new(),
            assets: OnceCell::new(),
            settings,
            limits: SyncMutex::new(PoolLimits::default()),
            browsers: Mutex::new(HashMap::new()),
            launching: SyncMutex::new(HashMap::new()),
            reaper: std::sync::OnceLock::new(),
            closing: Mutex::new(()),
            retiring: Mutex::new(Vec::new()),
        })
    }

    pub fn limits(&self) -> PoolLimits {
        *self.limits.lock().expect("pool limits poisoned")
    }

    pub fn set_limits(&self, limits: PoolLimits) {
        *self.limits.lock().expect("pool limits poisoned") = limits;
    }

    pub fn grid(&self) -> GridConfig {
        self.grid.lock().expect("grid config poisoned").clone()
    }

    pub fn set_grid(&self, grid: GridConfig) {
        *self.grid.lock().expect("grid config poisoned") = grid;
    }

    fn http(&self) -> Result<&reqwest::Client> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = crate::grid::client()?;
        Ok(self.http.get_or_init(|| http))
    }

    /// Every slot the configured hubs offer now (none without hubs).
    pub async fn grid_slots(&self) -> Result<Vec<Slot>> {
        let hubs = self.grid().hubs;
        if hubs.is_empty() {
            return Ok(Vec::new());
        }
        crate::grid::slots(self.http()?, &hubs).await
    }

    /// The slot named `name`, or an error that lists what the hubs offer.
    async fn slot(&self, name: &str) -> Result<Slot> {
        let grid = self.grid();
        if grid.hubs.is_empty() {
            return Err(BrowserError::Grid(format!(
                "grid:{name} asked for, but no Selenium Grid hub is configured; configure_browsers(#{{grid: \
                 \"http://hub:4444\"}}) or set WEBACCEL_GRID"
            )));
        }
        let slots = self.grid_slots().await?;
        slots.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
            BrowserError::Grid(format!(
                "no slot grid:{name} on {}; the hubs offer {}. Tag a node's stereotype with \"webaccel:name\": \"{name}\"",
                grid.hubs.join(", "),
                if slots.is_empty() { "none".to_string() } else { slots.iter().map(Slot::full_name).collect::<Vec<_>>().join(", ") }
            ))
        })
    }

    async fn assets(&self) -> Result<Arc<AssetServer>> {
        self.assets.get_or_try_init(|| async { AssetServer::start(&self.ort_dir).await.map(Arc::new) }).await.cloned()
    }

    /// A live session for `key`, launching (or relaunching) it when needed.
    pub async fn get(self: &Arc<Self>, key: &BrowserKey) -> Result<Arc<PooledBrowser>> {
        self.start_reaper();
        let launch_lock = self.launching.lock().expect("launch locks poisoned").entry(key.clone()).or_default().clone();
        let _launching = launch_lock.lock().await;
        let mut browsers = self.browsers.lock().await;
        if let Some(entry) = browsers.get_mut(key) {
            if entry.pooled.session.is_alive() {
                entry.last_used = Instant::now();
                return Ok(entry.pooled.clone());
            }
            tracing::info!(browser = %key.name(), "browser is gone; launching a fresh one");
            browsers.remove(key);
        }
        let max = self.limits().max_connections.max(1);
        while browsers.len() >= max {
            // Close the least recently used browser nobody is using right now.
            let idle = browsers
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.pooled) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = idle else {
                return Err(BrowserError::PoolFull { max_connections: max });
            };
            if let Some(entry) = browsers.remove(&victim) {
                tracing::debug!(browser = %victim.name(), "closing to stay within max_connections");
                close(entry.pooled).await;
            }
        }
        // The pool is free for other browsers while this one launches.
        drop(browsers);
        let assets = self.assets().await?;
        let session = match &key.target {
            BrowserTarget::Local(kind) => {
                BrowserSession::open(*kind, &key.extra_flags, &key.profile, assets, self.settings.clone()).await?
            }
            BrowserTarget::Remote(name) => {
                if key.profile != ProfileChoice::Fresh {
                    return Err(BrowserError::Grid(format!(
                        "grid:{name}: profile_dir applies to browsers on this machine; a Grid node keeps its own profiles"
                    )));
                }
                let slot = self.slot(name).await?;
                let advertise = self.grid().advertise_for(&slot.hub)?;
                let http = self.http()?;
                BrowserSession::open_remote(http, &slot, &key.extra_flags, assets, self.settings.clone(), advertise)
                    .await?
            }
        };
        let capabilities = session.capabilities().await?;
        let pooled = Arc::new(PooledBrowser { key: key.clone(), session, capabilities });
        self.browsers.lock().await.insert(key.clone(), Entry { pooled: pooled.clone(), last_used: Instant::now() });
        Ok(pooled)
    }

    /// The browsers held, by name (with their extra flags, if any).
    pub async fn held(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .browsers
            .lock()
            .await
            .keys()
            .map(|k| {
                let mut name = k.name();
                for flag in &k.extra_flags {
                    name = format!("{name} {flag}");
                }
                if let ProfileChoice::Kept(path) = &k.profile {
                    name = format!("{name} (profile {})", path.display());
                }
                name
            })
            .collect();
        names.sort();
        names
    }

    /// Closes browsers unused for longer than the idle timeout.
    pub async fn close_idle(&self) {
        let timeout = self.limits().idle_timeout;
        let mut browsers = self.browsers.lock().await;
        let stale: Vec<BrowserKey> = browsers
            .iter()
            .filter(|(_, e)| e.last_used.elapsed() >= timeout && Arc::strong_count(&e.pooled) == 1)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(entry) = browsers.remove(&key) {
                tracing::debug!(browser = %key.name(), "closing idle browser");
                close(entry.pooled).await;
            }
        }
    }

    fn start_reaper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        self.reaper.get_or_init(|| {
            tokio::spawn(async move {
                loop {
                    let Some(pool) = weak.upgrade() else { return };
                    let period =
                        (pool.limits().idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
                    drop(pool);
                    tokio::time::sleep(period).await;
                    let Some(pool) = weak.upgrade() else { return };
                    pool.close_idle().await;
                }
            })
        });
    }

    /// Drops `key`'s browser from the pool and closes it (in the background, once the call
    /// that held it lets it go); the next call for `key` launches a fresh one.
    pub async fn discard(&self, key: &BrowserKey) {
        let Some(entry) = self.browsers.lock().await.remove(key) else { return };
        tracing::debug!(browser = %key.name(), "discarding a browser an interrupted call left busy");
        let closing = tokio::spawn(async move {
            let mut pooled = entry.pooled;
            // The interrupted call drops its handle as it unwinds.
            for _ in 0..50 {
                match Arc::try_unwrap(pooled) {
                    Ok(alone) => return alone.session.shutdown().await,
                    Err(shared) => pooled = shared,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drop(pooled);
        });
        let mut retiring = self.retiring.lock().await;
        retiring.retain(|task| !task.is_finished());
        retiring.push(closing);
    }

    /// Closes every browser. Sessions still borrowed elsewhere are killed when dropped.
    pub async fn shutdown(&self) {
        let _closing = self.closing.lock().await;
        for task in self.retiring.lock().await.drain(..) {
            let _ = task.await;
        }
        let drained: Vec<_> = self.browsers.lock().await.drain().map(|(_, e)| e.pooled).collect();
        for pooled in drained {
            close(pooled).await;
        }
    }
}

async fn close(pooled: Arc<PooledBrowser>) {
    match Arc::try_unwrap(pooled) {
        Ok(pooled) => pooled.session.shutdown().await,
        // Still borrowed by a call in flight: it is killed when that call drops it.
        Err(shared) => drop(shared),
    }
}

impl Drop for BrowserPool {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.get() {
            reaper.abort();
        }
    }
}

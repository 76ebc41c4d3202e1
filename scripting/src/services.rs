//! What the scripting API orchestrates: the browser pool, the model catalog and files, and the
//! results store. Rhai functions are synchronous, so the async work runs on a runtime owned
//! here; `ScriptHost` must therefore be driven from a plain thread, never from inside tokio.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use webaccel_browser_runtime::{default_ort_dir, BrowserPool, PageSettings};
use webaccel_ipfs::Resolver;
use webaccel_models::{Catalog, ModelsDir, TextTokenizer};
use webaccel_results::{EnvironmentRecord, Frame, ResultStore, RunRecord};

use crate::compare::Progress;
use crate::error::ApiError;
use crate::outputs::Output;

/// Where things live; every field has an environment-variable default.
#[derive(Debug, Clone)]
pub struct Config {
    pub db_path: PathBuf,
    pub models_dir: PathBuf,
    pub ort_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: ResultStore::default_path(),
            models_dir: ModelsDir::default_root(),
            ort_dir: default_ort_dir(),
        }
    }
}

pub struct Services {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) pool: Arc<BrowserPool>,
    pub(crate) catalog: &'static Catalog,
    pub(crate) models: ModelsDir,
    config: Config,
    store: Mutex<Option<ResultStore>>,
    tokenizers: Mutex<HashMap<PathBuf, Arc<TextTokenizer>>>,
    /// Environments already stored by this process.
    environments: Mutex<HashSet<String>>,
    /// Reference outputs (fp32 on wasm) by reference file and input digest: accuracy needs
    /// one reference run per distinct input, not one per row.
    references: Mutex<HashMap<String, Output>>,
    progress: Mutex<Option<Arc<dyn Progress>>>,
    /// The content store and gateway client, opened on first use.
    ipfs: Mutex<Option<Arc<Resolver>>>,
}

impl Services {
    pub fn new(config: Config) -> std::io::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("webaccel-io")
            .enable_all()
            .build()?;
        Ok(Arc::new(Services {
            runtime,
            pool: BrowserPool::new(config.ort_dir.clone(), PageSettings::default()),
            catalog: Catalog::builtin(),
            models: ModelsDir::new(config.models_dir.clone()),
            store: Mutex::new(None),
            tokenizers: Mutex::new(HashMap::new()),
            environments: Mutex::new(HashSet::new()),
            references: Mutex::new(HashMap::new()),
            progress: Mutex::new(None),
            ipfs: Mutex::new(None),
            config,
        }))
    }

    /// Runs `f` on the results store, opening the database on first use. DuckDB is blocking,
    /// but its calls are small and happen between browser calls, never inside the runtime.
    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut ResultStore) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut store = self.store.lock().expect("results store poisoned");
        if store.is_none() {
            *store = Some(ResultStore::open(&self.config.db_path)?);
        }
        f(store.as_mut().expect("opened above"))
    }

    /// A query on the results database, as a frame (Arrow all the way, no per-row work).
    pub fn query(&self, sql: &str) -> Result<Frame, ApiError> {
        self.with_store(|store| Ok(store.sql(sql)?))
    }

    pub(crate) fn ipfs(&self) -> Result<Arc<Resolver>, ApiError> {
        let mut slot = self.ipfs.lock().expect("ipfs resolver poisoned");
        if slot.is_none() {
            *slot = Some(Arc::new(Resolver::open_default()?));
        }
        Ok(slot.clone().expect("opened above"))
    }

    /// Who hears about a `compare` grid's progress (the CLI's progress bar).
    pub fn set_progress(&self, progress: Arc<dyn Progress>) {
        *self.progress.lock().expect("progress poisoned") = Some(progress);
    }

    pub(crate) fn progress(&self) -> Option<Arc<dyn Progress>> {
        self.progress.lock().expect("progress poisoned").clone()
    }

    pub fn record(&self, records: &[RunRecord]) -> Result<(), ApiError> {
        self.with_store(|store| Ok(store.append(records)?))
    }

    /// Stores an environment the first time this process sees it.
    pub fn record_environment(&self, env: &EnvironmentRecord) -> Result<(), ApiError> {
        if self.environments.lock().expect("environment set poisoned").contains(&env.fingerprint) {
            return Ok(());
        }
        self.with_store(|store| Ok(store.record_environment(env)?))?;
        self.environments.lock().expect("environment set poisoned").insert(env.fingerprint.clone());
        Ok(())
    }

    pub(crate) fn reference_output(&self, key: &str) -> Option<Output> {
        self.references.lock().expect("reference cache poisoned").get(key).cloned()
    }

    pub(crate) fn keep_reference_output(&self, key: String, output: Output) {
        self.references.lock().expect("reference cache poisoned").insert(key, output);
    }

    pub fn tokenizer(&self, path: &Path) -> Result<Arc<TextTokenizer>, ApiError> {
        let mut cache = self.tokenizers.lock().expect("tokenizer cache poisoned");
        if let Some(t) = cache.get(path) {
            return Ok(t.clone());
        }
        let t = Arc::new(TextTokenizer::load(path)?);
        cache.insert(path.to_path_buf(), t.clone());
        Ok(t)
    }

    /// Closes every browser and removes their profile directories.
    pub fn shutdown(&self) {
        self.runtime.block_on(self.pool.shutdown());
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.shutdown();
    }
}

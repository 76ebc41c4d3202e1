//! What the scripting API orchestrates: the browser pool, the model catalog and files, and the
//! results store. Rhai functions are synchronous, so the async work runs on a runtime owned
//! here; `ScriptHost` must therefore be driven from a plain thread, never from inside tokio.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use webaccel_browser_runtime::{
    default_ort_dir, BrowserPool, InputMetadata, LoadRequest, PageSettings, Platform, PooledBrowser,
};
use webaccel_ipfs::Resolver;
use webaccel_models::generation::LmTokenizer;
use webaccel_models::speech::SpeechTokenizer;
use webaccel_models::{Catalog, GenerationProcessing, ModelsDir, SpeechProcessing, TextTokenizer};
use webaccel_native_runtime::{NativeRuntime, NativeSession};
use webaccel_results::{AccuracyUpdate, EnvironmentRecord, Frame, ResultStore, RunRecord};

use crate::error::ApiError;
use crate::interrupt::Interrupt;
use crate::outputs::Output;
use crate::progress::Progress;
use crate::target::ModelPath;

/// Locks a mutex even if a panic poisoned it: a panic in one cell becomes that cell's error
/// (the host catches it), and the state these mutexes guard (caches, the store handle) stays
/// usable by the next cell.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a graph declares: its inputs (with element types and shapes) and its outputs' names.
#[derive(Debug, Clone)]
pub struct Graph {
    pub inputs: Vec<InputMetadata>,
    pub outputs: Vec<String>,
}

/// Native sessions are kept per file and thread count; the reference's are apart from the
/// timed ones, so a timed session is prepared the same way whether or not a reference ran.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NativeKey {
    sha256: String,
    threads: u32,
    reference: bool,
}

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
    /// The user's interrupt: every wait of a long call races it.
    pub interrupt: Interrupt,
    pub(crate) pool: Arc<BrowserPool>,
    pub(crate) catalog: &'static Catalog,
    pub(crate) models: ModelsDir,
    config: Config,
    store: Mutex<Option<ResultStore>>,
    tokenizers: Mutex<HashMap<PathBuf, Arc<TextTokenizer>>>,
    lm_tokenizers: Mutex<HashMap<String, Arc<LmTokenizer>>>,
    speech_tokenizers: Mutex<HashMap<String, Arc<SpeechTokenizer>>>,
    /// Environments already stored by this process.
    environments: Mutex<HashSet<String>>,
    /// Reference outputs (fp32 on wasm) by reference file and input digest: accuracy needs
    /// one reference run per distinct input, not one per row.
    references: Mutex<HashMap<String, Output>>,
    progress: Mutex<Option<Arc<dyn Progress>>>,
    /// The content store and gateway client, opened on first use.
    ipfs: Mutex<Option<Arc<Resolver>>>,
    /// Native onnxruntime, loaded on first use; why not, when it cannot be.
    native: OnceLock<Result<Arc<NativeRuntime>, String>>,
    native_sessions: Mutex<HashMap<NativeKey, NativeSession>>,
    /// Users' graphs as inspected once per file (by sha256).
    graphs: Mutex<HashMap<String, Graph>>,
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
            interrupt: Interrupt::default(),
            pool: BrowserPool::new(config.ort_dir.clone(), PageSettings::default()),
            catalog: Catalog::builtin(),
            models: ModelsDir::new(config.models_dir.clone()),
            store: Mutex::new(None),
            tokenizers: Mutex::new(HashMap::new()),
            lm_tokenizers: Mutex::new(HashMap::new()),
            speech_tokenizers: Mutex::new(HashMap::new()),
            environments: Mutex::new(HashSet::new()),
            references: Mutex::new(HashMap::new()),
            progress: Mutex::new(None),
            ipfs: Mutex::new(None),
            native: OnceLock::new(),
            native_sessions: Mutex::new(HashMap::new()),
            graphs: Mutex::new(HashMap::new()),
            config,
        }))
    }

    /// Waits for `work` on the runtime, unless the user interrupts first (then `work` is
    /// dropped where it waits, and the call gets `ApiError::Interrupted`).
    pub(crate) fn wait<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, ApiError> {
        self.runtime.block_on(self.interrupt.race(work))
    }

    /// Runs `f` on the results store, opening the database on first use. DuckDB is blocking,
    /// but its calls are small and happen between browser calls, never inside the runtime.
    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut ResultStore) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut store = lock(&self.store);
        if store.is_none() {
            *store = Some(ResultStore::open(&self.config.db_path)?);
        }
        f(store.as_mut().expect("opened above"))
    }

    /// Opens the results database now (and so checks its lock): a call that will write rows
    /// fails at once on a locked file, before it has measured anything it would then lose.
    pub(crate) fn open_store(&self) -> Result<(), ApiError> {
        self.with_store(|_| Ok(()))
    }

    /// A user's query on the results database, as a frame (Arrow all the way, no per-row
    /// work). Read statements only: no query can erase or alter a measurement.
    pub fn query(&self, sql: &str) -> Result<Frame, ApiError> {
        self.with_store(|store| Ok(store.read_sql(sql)?))
    }

    pub(crate) fn update_accuracy(&self, update: &AccuracyUpdate) -> Result<(), ApiError> {
        self.with_store(|store| Ok(store.update_accuracy(update)?))
    }

    /// Native onnxruntime, loaded on first use (`WEBACCEL_ONNXRUNTIME`, else the venv's wheel);
    /// why not, when it cannot be.
    pub(crate) fn native(&self) -> Result<Arc<NativeRuntime>, String> {
        self.native
            .get_or_init(|| {
                NativeRuntime::find()
                    .and_then(|path| NativeRuntime::open(&path))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    fn with_native<T>(
        &self,
        file: &ModelPath,
        key: NativeKey,
        f: impl FnOnce(&mut NativeSession, bool) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let native = self.native().map_err(ApiError::NativeUnavailable)?;
        let mut sessions = lock(&self.native_sessions);
        let created = !sessions.contains_key(&key);
        if created {
            let session = native.load(&file.path, key.threads as usize)?;
            sessions.insert(key.clone(), session);
        }
        f(sessions.get_mut(&key).expect("inserted above"), created)
    }

    /// Runs `f` on the timed native sessions of an encoder-decoder model (`decoder`, and
    /// `encoder` when there is one), at `threads`; `f` is told whether the decoder's was
    /// created now. `reference` picks the reference's own sessions (one thread) instead.
    pub(crate) fn with_native_pair<T>(
        &self,
        decoder: &ModelPath,
        encoder: Option<&ModelPath>,
        threads: u32,
        reference: bool,
        f: impl FnOnce(&mut NativeSession, Option<&mut NativeSession>, bool) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let Some(encoder) = encoder else {
            return self.with_native(decoder, NativeKey { sha256: decoder.sha256.clone(), threads, reference }, |s, c| f(s, None, c));
        };
        let native = self.native().map_err(ApiError::NativeUnavailable)?;
        let mut sessions = lock(&self.native_sessions);
        let keys = [decoder, encoder].map(|file| NativeKey { sha256: file.sha256.clone(), threads, reference });
        let created = !sessions.contains_key(&keys[0]);
        for (key, file) in keys.iter().zip([decoder, encoder]) {
            if !sessions.contains_key(key) {
                let session = native.load(&file.path, threads as usize)?;
                sessions.insert(key.clone(), session);
            }
        }
        let [Some(dec), Some(enc)] = sessions.get_disjoint_mut([&keys[0], &keys[1]]) else {
            unreachable!("both sessions were inserted above, under different keys")
        };
        f(dec, Some(enc), created)
    }

    /// What a user's graph declares, inspected once per file: by native onnxruntime, or where
    /// it is unavailable (or cannot read the file) by a wasm session in `pooled`'s page, which
    /// is released afterwards and never shared with a timed session.
    pub(crate) fn graph(&self, file: &ModelPath, pooled: Option<&PooledBrowser>) -> Result<Graph, ApiError> {
        if let Some(known) = lock(&self.graphs).get(&file.sha256) {
            return Ok(known.clone());
        }
        let native = self.native().map_err(ApiError::NativeUnavailable).and_then(|native| {
            let session = native.load(&file.path, 1)?;
            Ok(Graph { inputs: session.inputs.clone(), outputs: session.output_names.clone() })
        });
        let graph = match (native, pooled) {
            (Ok(graph), _) => graph,
            (Err(e), None) => return Err(e),
            (Err(_), Some(pooled)) => {
                let key = format!("{}:inspect", file.sha256);
                let loaded =
                    self.wait_in(pooled, pooled.session.load(&key, &file.path, &LoadRequest::new(Platform::Wasm)))?;
                let _ = self.runtime.block_on(pooled.session.unload(&key));
                let info = loaded?;
                Graph { inputs: info.inputs, outputs: info.output_names }
            }
        };
        lock(&self.graphs).insert(file.sha256.clone(), graph.clone());
        Ok(graph)
    }

    pub(crate) fn ipfs(&self) -> Result<Arc<Resolver>, ApiError> {
        let mut slot = lock(&self.ipfs);
        if slot.is_none() {
            *slot = Some(Arc::new(Resolver::open_default()?));
        }
        Ok(slot.clone().expect("opened above"))
    }

    /// Who hears about long calls' progress (the CLI's bar, a notebook's display).
    pub fn set_progress(&self, progress: Arc<dyn Progress>) {
        *lock(&self.progress) = Some(progress);
    }

    pub(crate) fn progress(&self) -> Option<Arc<dyn Progress>> {
        lock(&self.progress).clone()
    }

    /// Tells the front end that `cell` is entering `phase`.
    pub(crate) fn phase(&self, cell: &str, phase: &str) {
        if let Some(p) = self.progress() {
            p.phase(cell, phase);
        }
    }

    pub fn record(&self, records: &[RunRecord]) -> Result<(), ApiError> {
        self.with_store(|store| Ok(store.append(records)?))
    }

    /// Stores an environment the first time this process sees it.
    pub fn record_environment(&self, env: &EnvironmentRecord) -> Result<(), ApiError> {
        if lock(&self.environments).contains(&env.fingerprint) {
            return Ok(());
        }
        self.with_store(|store| Ok(store.record_environment(env)?))?;
        lock(&self.environments).insert(env.fingerprint.clone());
        Ok(())
    }

    pub(crate) fn reference_output(&self, key: &str) -> Option<Output> {
        lock(&self.references).get(key).cloned()
    }

    pub(crate) fn keep_reference_output(&self, key: String, output: Output) {
        lock(&self.references).insert(key, output);
    }

    pub fn tokenizer(&self, path: &Path) -> Result<Arc<TextTokenizer>, ApiError> {
        let mut cache = lock(&self.tokenizers);
        if let Some(t) = cache.get(path) {
            return Ok(t.clone());
        }
        let t = Arc::new(TextTokenizer::load(path)?);
        cache.insert(path.to_path_buf(), t.clone());
        Ok(t)
    }

    /// A generation model's tokenizer and settings (its sidecars, checked by sha256 once).
    pub(crate) fn lm_tokenizer(&self, model: &str, p: &GenerationProcessing) -> Result<Arc<LmTokenizer>, ApiError> {
        let mut cache = lock(&self.lm_tokenizers);
        if let Some(t) = cache.get(model) {
            return Ok(t.clone());
        }
        let spec = self.catalog.resolve(model)?;
        let tokenizer = self.catalog.locate_sidecar(&self.models, spec, &p.tokenizer)?;
        let settings = self.catalog.locate_sidecar(&self.models, spec, &p.settings)?;
        let t = Arc::new(LmTokenizer::load(&tokenizer, &settings)?);
        cache.insert(model.to_string(), t.clone());
        Ok(t)
    }

    /// A speech model's tokenizer (packaged) and settings (a sidecar), checked by sha256 once.
    pub(crate) fn speech_tokenizer(&self, model: &str, p: &SpeechProcessing) -> Result<Arc<SpeechTokenizer>, ApiError> {
        let mut cache = lock(&self.speech_tokenizers);
        if let Some(t) = cache.get(model) {
            return Ok(t.clone());
        }
        let spec = self.catalog.resolve(model)?;
        let tokenizer = self.catalog.locate(&self.models, &p.tokenizer)?;
        let settings = self.catalog.locate_sidecar(&self.models, spec, &p.settings)?;
        let t = Arc::new(SpeechTokenizer::load(&tokenizer, &settings)?);
        cache.insert(model.to_string(), t.clone());
        Ok(t)
    }

    /// `wait` for work in `pooled`'s page. An interrupt leaves the page busy with what it was
    /// asked, so the browser is retired too.
    pub(crate) fn wait_in<T>(
        &self,
        pooled: &PooledBrowser,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        self.wait(work).inspect_err(|_| self.retire(pooled))
    }

    /// Gives up a browser whose page was left busy by an interrupted call: the pool drops it
    /// and closes it in the background, and the next call launches a fresh one.
    fn retire(&self, pooled: &PooledBrowser) {
        pooled.session.retire();
        let (pool, key) = (self.pool.clone(), pooled.key.clone());
        self.runtime.spawn(async move { pool.discard(&key).await });
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

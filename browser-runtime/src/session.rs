//! A browser with one page on the in-page runtime: the unit that loads and runs models.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use chromiumoxide::cdp::browser_protocol::inspector::EventTargetCrashed;
use chromiumoxide::error::CdpError;
use chromiumoxide::Page;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::assets::AssetServer;
use crate::bidi::{Bidi, BidiError};
use crate::capabilities::{Capabilities, PageCapabilities, RemoteNode};
use crate::channel::{aligned, ChannelError, PageChannel, Reply};
use crate::error::{BrowserError, Result};
use crate::launch::{BrowserKind, Control, LaunchedBrowser, ProfileChoice};
use webaccel_tensor::{DType, Generation, GenerationSample, InputMetadata, Sequence, Tensor};

/// The execution provider a model runs on inside the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Wasm,
    Webgpu,
    Webnn,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Webnn, Platform::Webgpu, Platform::Wasm];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Wasm => "wasm",
            Platform::Webgpu => "webgpu",
            Platform::Webnn => "webnn",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Settings fixed for the life of a page (onnxruntime-web reads them at its first session).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageSettings {
    /// wasm threads. 1 by default: on this class of machine two threads measured slower than
    /// one, and one thread keeps timings comparable across browsers.
    pub num_threads: u32,
}

impl Default for PageSettings {
    fn default() -> Self {
        PageSettings { num_threads: 1 }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadRequest {
    pub platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_dimension_overrides: Option<BTreeMap<String, u64>>,
    /// Have ORT profile the session (every run, from creation); its first `run` call then
    /// reports time per operator type and ends the profiling.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub profile: bool,
    /// Report where ORT places the graph's nodes (`LoadInfo::placement`), from a probe session
    /// created verbose and released before the measured session is created.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub placement: bool,
    /// Outputs kept in GPU buffers on webgpu (a decoder's KV cache, fed back as inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_outputs: Option<Vec<String>>,
}

impl LoadRequest {
    pub fn new(platform: Platform) -> Self {
        LoadRequest { platform, device: None, free_dimension_overrides: None, profile: false, placement: false, gpu_outputs: None }
    }
}

/// Time per run spent in one operator type's kernels, as ORT's profiler measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpTime {
    pub op: String,
    pub ms: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadInfo {
    pub cached: bool,
    /// None when the session was already loaded: this call created nothing.
    pub session_create_ms: Option<f64>,
    /// The page's download of the model file (from the asset server, over the network for a
    /// remote browser); None for a session already loaded.
    #[serde(default)]
    pub model_fetch_ms: Option<f64>,
    /// Nodes per execution provider, from ORT's placement report (when asked for; None where
    /// the build printed none).
    #[serde(default)]
    pub placement: Option<BTreeMap<String, u64>>,
    pub input_names: Vec<String>,
    pub output_names: Vec<String>,
    /// What the graph declares for each input (ORT-web's `inputMetadata`): name, element type
    /// and shape, symbolic dimensions as strings.
    #[serde(default)]
    pub inputs: Vec<InputMetadata>,
}

/// How a `run` call runs the model.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Untimed runs before the timed ones.
    pub warmup: u32,
    /// ...and for at least this long (tier-up of the wasm code settles over seconds).
    pub warmup_min: Duration,
    /// Timed runs.
    pub runs: u32,
    /// On a session's first call, make one warm-up run first, so the reported first run is
    /// past shader compilation; its time is reported as `precompile_ms`.
    pub precompile: bool,
    /// Ask the browser for the page's memory afterwards, waiting at most this long.
    pub measure_memory: Option<Duration>,
    /// The outputs to compute and return; empty means all of them.
    pub fetches: Vec<String>,
    /// Run step by step over a sequence, carrying state (one timed run is the whole sequence).
    pub sequence: Option<Sequence>,
    /// Generate from a prompt (one timed run is one whole generation; the inputs are unused
    /// but for an encoder's).
    pub generation: Option<Generation>,
    /// For an encoder-decoder generation: the key of the encoder's session, loaded in this page.
    pub encoder: Option<String>,
    /// The page refuses or stops a call that cannot finish within this; the host waits a
    /// little longer before it gives the browser up as hung.
    pub limit: Duration,
}

impl RunOptions {
    pub fn timed(warmup: u32, runs: u32) -> Self {
        RunOptions {
            warmup,
            warmup_min: Duration::ZERO,
            runs,
            precompile: false,
            measure_memory: None,
            fetches: Vec::new(),
            sequence: None,
            generation: None,
            encoder: None,
            limit: RUN_LIMIT,
        }
    }
}

/// The longest a run call may take by default (warm-up and timed runs together).
pub const RUN_LIMIT: Duration = Duration::from_secs(900);

/// How much longer than a call's limit the host waits before it treats the page as hung: the
/// page stops itself at the limit, and its reply still has to arrive.
const RUN_GRACE: Duration = Duration::from_secs(60);

/// The page's memory as the browser reports it; `bytes` is None where it reports nothing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemoryReport {
    pub bytes: Option<i64>,
    pub source: Option<String>,
    pub error: Option<String>,
}

/// Outputs and in-page timings of one `run`.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The warm-up run made on the session's first call when precompiling (the cold cost);
    /// None on a later call, which made none.
    pub precompile_ms: Option<f64>,
    /// The session's first run ever (shader compilation and first allocations), when it
    /// happened in this call; None on a later call of the same loaded session.
    pub first_run_ms: Option<f64>,
    pub first_run_this_call: bool,
    /// Untimed warm-up runs made in this call, and how long they took together.
    pub warmup_runs: u32,
    pub warmup_ms: f64,
    /// Each timed run, in order.
    pub run_ms: Vec<f64>,
    pub outputs: Vec<Tensor>,
    /// In-page time from the request's arrival to its reply's departure: with `run_ms`, it
    /// splits the bridge's overhead into page-side work and transport.
    pub page_ms: f64,
    pub memory: Option<MemoryReport>,
    /// For a profiled session: kernel time per operator type over the timed runs, largest
    /// first.
    pub op_profile: Option<Vec<OpTime>>,
    /// A generation's tokens and times, per timed run.
    pub generation: Option<Vec<GenerationSample>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageRunResult {
    precompile_ms: Option<f64>,
    first_run_ms: Option<f64>,
    first_run_this_call: bool,
    warmup_runs: u32,
    warmup_ms: f64,
    run_ms: Vec<f64>,
    outputs: Vec<PageOutput>,
    page_ms: f64,
    memory: Option<MemoryReport>,
    op_profile: Option<Vec<OpTime>>,
    generation: Option<Vec<GenerationSample>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageOutput {
    name: String,
    dtype: DType,
    dims: Vec<usize>,
    byte_offset: usize,
    byte_length: usize,
}

/// Per-call limits. A call that exceeds its limit is treated as a hung browser: the browser
/// is shut down and the call fails, so nothing ever waits forever.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub load: Duration,
    pub run: Duration,
    pub probe: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { load: Duration::from_secs(300), run: Duration::from_secs(900), probe: Duration::from_secs(60) }
    }
}

pub struct BrowserSession {
    browser: LaunchedBrowser,
    page: PageControl,
    assets: Arc<AssetServer>,
    page_alive: watch::Receiver<bool>,
    /// Set when a call timed out: the page may be wedged, so the session must not be reused.
    hung: AtomicBool,
    /// Run requests and tensors go here; set once the page has connected.
    channel: OnceLock<PageChannel>,
    settings: PageSettings,
    /// Where the page was loaded from: the loopback server, or its TLS listener for a remote
    /// browser. Every other URL the page gets is relative to it.
    base: String,
    pub timeouts: Timeouts,
}

impl BrowserSession {
    /// Launches `kind`, opens the runtime page and configures onnxruntime-web in it.
    pub async fn open(
        kind: BrowserKind,
        extra_flags: &[String],
        profile: &ProfileChoice,
        assets: Arc<AssetServer>,
        settings: PageSettings,
    ) -> Result<Self> {
        let browser = LaunchedBrowser::launch(kind, extra_flags, profile).await?;
        let base = assets.base_url();
        Self::start(browser, assets, settings, base).await
    }

    /// A browser in a Selenium Grid slot, its page served over TLS on `advertise` (an address
    /// of this machine the node can reach); from there on the same as a local one.
    pub async fn open_remote(
        http: &reqwest::Client,
        slot: &crate::grid::Slot,
        extra_flags: &[String],
        assets: Arc<AssetServer>,
        settings: PageSettings,
        advertise: std::net::SocketAddr,
    ) -> Result<Self> {
        let base = assets.serve_remote(advertise).await?;
        let browser = LaunchedBrowser::remote(http, slot, extra_flags).await?;
        Self::start(browser, assets, settings, base).await
    }

    /// Opens the runtime page at `base` in `browser`, imports the runtime, configures ORT and
    /// connects the data channel.
    async fn start(
        browser: LaunchedBrowser,
        assets: Arc<AssetServer>,
        settings: PageSettings,
        base: String,
    ) -> Result<Self> {
        let page_url = format!("{base}index.html");
        let (page_tx, page_alive) = watch::channel(true);
        let open_page = async {
            Ok::<_, BrowserError>(match &browser.control {
                Control::Cdp { browser: cdp, .. } => {
                    let page =
                        cdp.new_page(page_url.as_str()).await.map_err(|e| protocol("opening the runtime page", e))?;
                    // A renderer crash does not close the CDP connection; without this the next
                    // evaluate would wait for its timeout.
                    let mut crashes = page
                        .event_listener::<EventTargetCrashed>()
                        .await
                        .map_err(|e| protocol("listening for page crashes", e))?;
                    tokio::spawn(async move {
                        if crashes.next().await.is_some() {
                            let _ = page_tx.send(false);
                        }
                    });
                    PageControl::Cdp(page)
                }
                Control::Bidi(bidi) => {
                    let context = open_context(bidi, &page_url).await?;
                    PageControl::Bidi { bidi: bidi.clone(), context, _page_alive: page_tx }
                }
            })
        };
        // The control connection itself waits as long as a model load may take; opening a page
        // on a browser that just started must not.
        let probe = Timeouts::default().probe;
        let page = tokio::time::timeout(probe, open_page).await.map_err(|_| BrowserError::Timeout {
            browser: browser.name.clone(),
            during: "opening the runtime page".into(),
            seconds: probe.as_secs(),
        })??;

        let session = BrowserSession {
            browser,
            page,
            assets,
            page_alive,
            hung: AtomicBool::new(false),
            channel: OnceLock::new(),
            settings,
            base,
            timeouts: Timeouts::default(),
        };
        let base = session.base.clone();
        let probe = session.timeouts.probe;
        session
            .eval::<bool>(
                "loading the in-page runtime",
                format!("import('{base}runtime.js').then(m => {{ window.webaccel = m; return true; }})"),
                probe,
            )
            .await?;
        let configure = json!({
            "wasmPaths": format!("{base}ort/"),
            "numThreads": session.settings.num_threads,
        });
        session
            .eval::<serde_json::Value>(
                "configuring onnxruntime-web",
                format!("window.webaccel.configure({configure})"),
                probe,
            )
            .await?;
        let (url, accepted) = session.assets.open_channel();
        session
            .eval::<bool>("opening the data channel", format!("window.webaccel.connect({})", json!(url)), probe)
            .await?;
        // The page's socket opened, so the server has it or is handing it over right now.
        let socket = tokio::time::timeout(probe, accepted).await.ok().and_then(Result::ok).ok_or_else(|| {
            BrowserError::Protocol {
                during: "opening the data channel".into(),
                message: "the page reported its WebSocket open but the server never accepted it".into(),
            }
        })?;
        let _ = session.channel.set(PageChannel::start(socket, session.assets.clone()));
        Ok(session)
    }

    pub fn version(&self) -> &str {
        &self.browser.version
    }

    /// Every switch the browser was started with.
    pub fn flags(&self) -> &[String] {
        &self.browser.flags
    }

    /// A local browser's profile directory.
    pub fn profile_dir(&self) -> Option<&Path> {
        self.browser.profile_dir()
    }

    /// Marks the session unusable: a call abandoned mid-way (the user interrupted it) leaves
    /// the page busy, so the pool launches a fresh browser for the next call.
    pub fn retire(&self) {
        self.hung.store(true, Ordering::Relaxed);
    }

    pub fn is_alive(&self) -> bool {
        self.browser.is_alive()
            && *self.page_alive.borrow()
            && !self.hung.load(Ordering::Relaxed)
            // A page whose data channel closed cannot run anything: the pool replaces it.
            && self.channel.get().is_none_or(PageChannel::is_open)
    }

    pub async fn capabilities(&self) -> Result<Capabilities> {
        let page: PageCapabilities =
            self.eval("measuring capabilities", "window.webaccel.capabilities()".into(), self.timeouts.probe).await?;
        Ok(Capabilities {
            browser: self.browser.name.clone(),
            version: self.browser.version.clone(),
            executable: self.browser.executable.clone(),
            node: self.browser.node().map(|slot| RemoteNode {
                hub: slot.hub.clone(),
                uri: slot.node_uri.clone(),
                os: slot.os.clone(),
                browser_name: slot.browser_name.clone(),
                tags: slot.tags.clone(),
            }),
            page,
        })
    }

    /// Loads `model` under `key` (a no-op when that key is already loaded in this page).
    pub async fn load(&self, key: &str, model: &Path, request: &LoadRequest) -> Result<LoadInfo> {
        let args = self.load_args(model, request)?;
        self.eval("loading the model", format!("window.webaccel.load({}, {args})", json!(key)), self.timeouts.load)
            .await
    }

    /// What the page's `load` takes: the request, and the URL the model is served at.
    fn load_args(&self, model: &Path, request: &LoadRequest) -> Result<serde_json::Value> {
        let mut args = serde_json::to_value(request).expect("LoadRequest serializes");
        args["modelUrl"] = json!(self.assets.register_model(model)?);
        Ok(args)
    }

    /// Loads several models at once (concurrently when `parallel`), returning the in-page wall
    /// time of the whole and each model's own load.
    pub async fn load_all(
        &self,
        models: &[(String, &Path, LoadRequest)],
        parallel: bool,
    ) -> Result<(f64, Vec<LoadInfo>)> {
        let mut list = Vec::with_capacity(models.len());
        for (key, path, request) in models {
            let mut entry = self.load_args(path, request)?;
            entry["key"] = json!(key);
            list.push(entry);
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Loaded {
            wall_ms: f64,
            sessions: Vec<LoadInfo>,
        }
        let loaded: Loaded = self
            .eval(
                "loading the models",
                format!("window.webaccel.loadAll({}, {parallel})", json!(list)),
                self.timeouts.load,
            )
            .await?;
        Ok((loaded.wall_ms, loaded.sessions))
    }

    /// Releases a loaded model session (a no-op for an unknown key).
    pub async fn unload(&self, key: &str) -> Result<bool> {
        self.eval("releasing a model", format!("window.webaccel.unload({})", json!(key)), self.timeouts.probe).await
    }

    /// Runs a loaded model: its first run (once per loaded session), `warmup` untimed runs,
    /// then `runs` timed runs.
    pub async fn run(&self, key: &str, inputs: &[Tensor], options: &RunOptions) -> Result<RunOutput> {
        // One body for all inputs, each tensor aligned so that the page can view it in place;
        // the descriptors give each tensor's slice of it.
        let mut body = Vec::with_capacity(inputs.iter().map(|t| aligned(t.data.len())).sum());
        let mut described = Vec::with_capacity(inputs.len());
        for tensor in inputs {
            tensor.validate()?;
            body.resize(aligned(body.len()), 0);
            described.push(json!({
                "name": tensor.name, "dtype": tensor.dtype, "dims": tensor.dims,
                "byteOffset": body.len(), "byteLength": tensor.data.len(),
            }));
            body.extend_from_slice(&tensor.data);
        }
        let args = json!({
            "key": key, "inputs": described,
            "warmup": options.warmup, "warmupMs": options.warmup_min.as_secs_f64() * 1000.0,
            "runs": options.runs, "precompile": options.precompile,
            "measureMemoryMs": options.measure_memory.map(|d| d.as_millis() as u64),
            "fetches": (!options.fetches.is_empty()).then_some(&options.fetches),
            "sequence": options.sequence,
            "generation": options.generation,
            "encoder": options.encoder,
            "limitMs": options.limit.as_secs_f64() * 1000.0,
        });
        let during = "running the model";
        let reply = self.call(during, "run", args, body, options.limit + RUN_GRACE).await?;
        let result: PageRunResult = page_result(during, reply.result)?;
        let mut outputs = Vec::with_capacity(result.outputs.len());
        for out in result.outputs {
            let end = out.byte_offset + out.byte_length;
            let data = reply
                .body
                .get(out.byte_offset..end)
                .ok_or_else(|| BrowserError::BadOutput(format!("output {} lies outside the reply's body", out.name)))?;
            let tensor = Tensor { name: out.name, dtype: out.dtype, dims: out.dims, data: data.to_vec() };
            tensor.validate()?;
            outputs.push(tensor);
        }
        Ok(RunOutput {
            precompile_ms: result.precompile_ms,
            memory: result.memory,
            first_run_ms: result.first_run_ms,
            first_run_this_call: result.first_run_this_call,
            warmup_runs: result.warmup_runs,
            warmup_ms: result.warmup_ms,
            run_ms: result.run_ms,
            outputs,
            page_ms: result.page_ms,
            op_profile: result.op_profile,
            generation: result.generation,
        })
    }

    /// Moves `bytes` host → page → host over the data channel, for the transfer benchmark. The
    /// body is taken and given back as it travels, without a copy on the host.
    pub async fn echo(&self, bytes: Vec<u8>) -> Result<Bytes> {
        Ok(self.call("echoing a body", "echo", json!({}), bytes, self.timeouts.run).await?.body)
    }

    /// Serves `path` as a static file and times the page's plain download of it.
    pub async fn download(&self, path: &Path) -> Result<(u64, f64)> {
        let url = self.assets.register_model(path)?;
        #[derive(Deserialize)]
        struct Downloaded {
            bytes: u64,
            ms: f64,
        }
        let d: Downloaded = self
            .eval("downloading a file", format!("window.webaccel.download({})", json!(url)), self.timeouts.run)
            .await?;
        Ok((d.bytes, d.ms))
    }

    /// In-page times of `runs` one-element WebNN inferences on `device` (write, dispatch, read
    /// back): the floor under any model's WebNN latency in this browser.
    pub async fn webnn_floor(&self, device: &str, warmup: u32, runs: u32) -> Result<Vec<f64>> {
        let args = json!({"deviceType": device, "warmup": warmup, "runs": runs});
        self.eval("timing a one-element WebNN graph", format!("window.webaccel.webnnFloor({args})"), self.timeouts.run)
            .await
    }

    /// A bare round trip through the control protocol (CDP or WebDriver BiDi) into the page and
    /// back, for measuring bridge overhead.
    pub async fn ping(&self) -> Result<f64> {
        self.eval("ping", "performance.now()".into(), self.timeouts.probe).await
    }

    pub async fn shutdown(self) {
        self.browser.shutdown().await;
    }

    /// Evaluates `expression` in the page over the control protocol, awaiting a promise.
    async fn eval<T: serde::de::DeserializeOwned>(
        &self,
        during: &str,
        expression: String,
        limit: Duration,
    ) -> Result<T> {
        let evaluation = async {
            let value = match &self.page {
                PageControl::Cdp(page) => match page.evaluate_expression(expression).await {
                    Ok(result) => result.value().cloned().unwrap_or(serde_json::Value::Null),
                    Err(CdpError::JavascriptException(details)) => {
                        return Err(BrowserError::Page {
                            during: during.to_string(),
                            message: exception_text(&details),
                        })
                    }
                    Err(e) => return Err(protocol(during, e)),
                },
                PageControl::Bidi { bidi, context, .. } => bidi_evaluate(bidi, context, during, &expression).await?,
            };
            page_result(during, value)
        };
        self.guarded(during, limit, evaluation).await
    }

    /// Sends `method` to the page over the data channel.
    async fn call(
        &self,
        during: &str,
        method: &str,
        args: serde_json::Value,
        body: Vec<u8>,
        limit: Duration,
    ) -> Result<Reply> {
        let Some(channel) = self.channel.get() else { return Err(self.crashed(during).await) };
        let call = async {
            channel.call(method, args, body).await.map_err(|e| match e {
                ChannelError::Page(message) => BrowserError::Page { during: during.to_string(), message },
                ChannelError::BadFrame(_) | ChannelError::NothingPosted => BrowserError::BadOutput(e.to_string()),
                // The browser may be dying; `guarded` reports that as the crash it is.
                ChannelError::Closed => BrowserError::ChannelClosed { during: during.to_string() },
            })
        };
        self.guarded(during, limit, call).await
    }

    /// Runs `work` racing the browser's death and a timeout, so that a crashed or hung browser
    /// is an error, never a hang. A lost connection from a browser that is dying is reported as
    /// the crash it is.
    async fn guarded<T>(&self, during: &str, limit: Duration, work: impl Future<Output = Result<T>>) -> Result<T> {
        if !self.is_alive() {
            return Err(self.crashed(during).await);
        }
        // A remote browser's death never reaches the host through the hub's control
        // connection, which stays open; its page's data channel closing is the news.
        let remote_channel = self.browser.grid_session().and(self.channel.get()).map(PageChannel::watch_open);
        match race_liveness(work, self.browser.liveness(), self.page_alive.clone(), remote_channel.clone(), limit).await
        {
            Raced::Done(Err(lost @ (BrowserError::Protocol { .. } | BrowserError::ChannelClosed { .. }))) => {
                // A killed browser's sockets close a moment before its exit is noticed.
                let died = race_liveness(
                    std::future::pending::<()>(),
                    self.browser.liveness(),
                    self.page_alive.clone(),
                    remote_channel,
                    DEATH_NOTICE,
                );
                match died.await {
                    Raced::Died => Err(self.crashed(during).await),
                    // A remote browser's death reaches the host through the hub, if at all: its
                    // page's lost channel is the news, and the hub is asked what happened.
                    _ if self.browser.grid_session().is_some() => Err(self.crashed(during).await),
                    _ => Err(lost),
                }
            }
            Raced::Done(outcome) => outcome,
            Raced::Died => Err(self.crashed(during).await),
            Raced::TimedOut => {
                self.hung.store(true, Ordering::Relaxed);
                Err(BrowserError::Timeout {
                    browser: self.browser.name.clone(),
                    during: during.to_string(),
                    seconds: limit.as_secs(),
                })
            }
        }
    }

    /// The error for a browser that went away. A remote one's hub is asked whether it still
    /// knows the session, which tells a reaped or deleted session from a node that stopped.
    async fn crashed(&self, during: &str) -> BrowserError {
        match self.browser.grid_session() {
            Some(session) => session.gone(during).await,
            None => BrowserError::Crashed { browser: self.browser.name.clone(), during: during.to_string() },
        }
    }
}

/// How long a lost connection waits to learn whether the browser died with it.
const DEATH_NOTICE: Duration = Duration::from_secs(1);

enum Raced<T> {
    Done(T),
    Died,
    TimedOut,
}

async fn race_liveness<F: Future>(
    work: F,
    mut browser_alive: watch::Receiver<bool>,
    mut page_alive: watch::Receiver<bool>,
    channel_open: Option<watch::Receiver<bool>>,
    limit: Duration,
) -> Raced<F::Output> {
    let channel_closed = async {
        match channel_open {
            Some(mut open) => {
                let _ = open.wait_for(|open| !open).await;
            }
            None => std::future::pending().await,
        }
    };
    let died = async {
        tokio::select! {
            _ = browser_alive.wait_for(|alive| !alive) => {},
            _ = page_alive.wait_for(|alive| !alive) => {},
            _ = channel_closed => {},
        }
    };
    tokio::select! {
        out = work => Raced::Done(out),
        _ = died => Raced::Died,
        _ = tokio::time::sleep(limit) => Raced::TimedOut,
    }
}

/// A page result's JSON as the type the host expects.
fn page_result<T: serde::de::DeserializeOwned>(during: &str, result: serde_json::Value) -> Result<T> {
    serde_json::from_value(result).map_err(|e| BrowserError::Page {
        during: during.to_string(),
        message: format!("unexpected result shape: {e}"),
    })
}

/// The page, as the control protocol addresses it.
enum PageControl {
    Cdp(Page),
    Bidi {
        bidi: Arc<Bidi>,
        context: String,
        /// Held, never sent: a dropped sender would read as a dead page. A crashed Firefox
        /// tab is noticed through its data channel closing, which retires the session.
        _page_alive: watch::Sender<bool>,
    },
}

/// Navigates Firefox's first tab to the runtime page and waits for it to load; returns the tab's
/// browsing context id.
async fn open_context(bidi: &Bidi, url: &str) -> Result<String> {
    let during = "opening the runtime page";
    let tree =
        bidi.command("browsingContext.getTree", json!({"maxDepth": 0})).await.map_err(|e| bidi_failed(during, e))?;
    let context = tree["contexts"][0]["context"]
        .as_str()
        .ok_or_else(|| BrowserError::Protocol {
            during: during.into(),
            message: format!("no browsing context in {tree}"),
        })?
        .to_string();
    bidi.command("browsingContext.navigate", json!({"context": context, "url": url, "wait": "complete"}))
        .await
        .map_err(|e| bidi_failed(during, e))?;
    Ok(context)
}

/// `script.evaluate` of `expression` in `context`, its value carried back as JSON text (BiDi
/// serialises values in its own typed form; the page's results are plain JSON).
async fn bidi_evaluate(bidi: &Bidi, context: &str, during: &str, expression: &str) -> Result<serde_json::Value> {
    let wrapped = format!("(async () => JSON.stringify((await ({expression})) ?? null))()");
    let params = json!({
        "expression": wrapped, "target": {"context": context},
        "awaitPromise": true, "resultOwnership": "none",
    });
    let evaluated = bidi.command("script.evaluate", params).await.map_err(|e| bidi_failed(during, e))?;
    if evaluated["type"] == "exception" {
        // "Error: message" and, on further lines, where; the first line is what the user needs.
        let text = evaluated["exceptionDetails"]["text"].as_str().unwrap_or("an exception with no text");
        return Err(BrowserError::Page {
            during: during.into(),
            message: text.lines().next().unwrap_or_default().into(),
        });
    }
    let text = evaluated["result"]["value"].as_str().unwrap_or("null");
    serde_json::from_str(text).map_err(|e| BrowserError::Page {
        during: during.into(),
        message: format!("the page's result is not JSON: {e}"),
    })
}

fn bidi_failed(during: &str, e: BidiError) -> BrowserError {
    BrowserError::Protocol { during: during.to_string(), message: e.to_string() }
}

fn protocol(during: &str, e: CdpError) -> BrowserError {
    BrowserError::Protocol { during: during.to_string(), message: e.to_string() }
}

fn exception_text(details: &chromiumoxide::cdp::js_protocol::runtime::ExceptionDetails) -> String {
    // The thrown value's description carries "Name: message" and the stack; the first line is
    // what the user needs.
    let described =
        details.exception.as_ref().and_then(|e| e.description.clone()).unwrap_or_else(|| details.text.clone());
    described.lines().next().unwrap_or_default().to_string()
}

//! The asset server. It serves the in-page runtime, onnxruntime-web from npm and the model
//! files the host registers, accepts each page's data channel (a WebSocket, see `channel`) and
//! holds the large tensor bodies that channel moves as plain HTTP bodies, all under one
//! unguessable path token so that no other page can read or post them, or connect.
//!
//! Local pages reach it on loopback (`http://127.0.0.1`, a secure context). A remote browser
//! (a Grid node) cannot reach this machine's loopback, and a page from `http://10.x` is no
//! secure context (no WebGPU, no cross-origin isolation), so for remote pages the same routes
//! are also served over TLS on an address the nodes can reach (`serve_remote`), with a
//! self-signed certificate made for this process. Every URL a page is given is relative to the
//! page, so one page never cares which of the two it was loaded from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::Router;
use rand::RngCore;
use tokio::sync::oneshot;
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::{BrowserError, Result};

const INDEX_HTML: &str = include_str!("../web/index.html");
const RUNTIME_JS: &str = include_str!("../web/runtime.js");

/// Where onnxruntime-web's `dist/` lives: `WEBACCEL_ORT_DIR`, else the project's node_modules.
pub fn default_ort_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEBACCEL_ORT_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/onnxruntime-web/dist")
}

/// The largest frame a page may send on its data channel. Outputs travel whole in one frame;
/// the default limit (64 MiB) would refuse the 64 MiB transfer benchmark's echo.
const MAX_FRAME: usize = 1 << 32;

#[derive(Default)]
struct Slots {
    models: HashMap<String, PathBuf>,
    inputs: HashMap<String, Bytes>,
    outputs: HashMap<String, Bytes>,
    /// Data channels opened for pages and not yet connected.
    channels: HashMap<String, oneshot::Sender<WebSocket>>,
    next_id: u64,
}

#[derive(Clone)]
struct AppState {
    slots: Arc<Mutex<Slots>>,
}

/// A running asset server. Dropping it stops the server.
pub struct AssetServer {
    addr: SocketAddr,
    token: String,
    slots: Arc<Mutex<Slots>>,
    app: Router,
    task: tokio::task::JoinHandle<()>,
    /// The TLS listener for remote pages, once one was asked for: its base URL and task.
    remote: tokio::sync::Mutex<Option<(String, tokio::task::JoinHandle<()>)>>,
}

impl AssetServer {
    pub async fn start(ort_dir: &Path) -> Result<Self> {
        if !ort_dir.join("ort.all.min.mjs").is_file() {
            return Err(BrowserError::OrtMissing(ort_dir.to_path_buf()));
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let slots = Arc::new(Mutex::new(Slots::default()));
        let state = AppState { slots: slots.clone() };

        let base = format!("/{token}");
        let app = Router::new()
            .route(&format!("{base}/index.html"), get(|| async { html(INDEX_HTML) }))
            .route(&format!("{base}/runtime.js"), get(|| async { javascript(RUNTIME_JS) }))
            .route(&format!("{base}/models/{{id}}/{{file}}"), get(serve_model))
            .route(&format!("{base}/channel/{{id}}"), get(accept_channel))
            .route(
                &format!("{base}/tensors/{{id}}"),
                get(take_input).post(put_output).layer(DefaultBodyLimit::disable()),
            )
            .nest_service(&format!("{base}/ort"), ServeDir::new(ort_dir))
            .with_state(state)
            // Cross-origin isolation: without these, SharedArrayBuffer (and so wasm threads)
            // is unavailable in the page.
            .layer(SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static("cross-origin-embedder-policy"),
                HeaderValue::from_static("require-corp"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ));

        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| BrowserError::AssetServer(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| BrowserError::AssetServer(e.to_string()))?;
        // Run requests and replies are small and latency-bound: without TCP_NODELAY a frame
        // can wait for the peer's delayed ACK (tens of ms), counted as bridge overhead.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let served = app.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, served).await {
                tracing::error!("asset server stopped: {e}");
            }
        });
        tracing::debug!(%addr, "asset server listening");
        Ok(AssetServer { addr, token, slots, app, task, remote: tokio::sync::Mutex::new(None) })
    }

    /// Serves the same routes over TLS on `addr` (an address remote browsers can reach; port 0
    /// for any), once per process, and returns that listener's base URL. The certificate is
    /// self-signed for its IP and made now; remote sessions are created with `acceptInsecureCerts`.
    pub async fn serve_remote(&self, addr: SocketAddr) -> Result<String> {
        let ip = addr.ip();
        let mut remote = self.remote.lock().await;
        if let Some((base, _)) = remote.as_ref() {
            return Ok(base.clone());
        }
        let failed =
            |what: &str, e: String| BrowserError::AssetServer(format!("{what} for remote pages on {addr}: {e}"));
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| failed("cannot listen", e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| failed("no address", e.to_string()))?;
        let acceptor = crate::tls::acceptor(ip).map_err(|e| failed("no TLS certificate", e))?;
        let listener = crate::tls::TlsListener::new(listener, acceptor);
        let app = self.app.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("remote asset server stopped: {e}");
            }
        });
        let base = format!("https://{addr}/{}/", self.token);
        tracing::debug!(%addr, "asset server listening for remote pages");
        *remote = Some((base.clone(), task));
        Ok(base)
    }

    /// The base URL every page of this server lives under, ending in `/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/{}/", self.addr, self.token)
    }

    /// Makes a model file available to pages and returns its URL, relative to the page.
    pub fn register_model(&self, path: &Path) -> Result<String> {
        if !path.is_file() {
            return Err(BrowserError::ModelMissing(path.to_path_buf()));
        }
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("model.onnx").to_string();
        let mut slots = self.slots.lock().expect("asset slots poisoned");
        if let Some((id, _)) = slots.models.iter().find(|(_, p)| p.as_path() == path) {
            return Ok(format!("models/{id}/{file}"));
        }
        slots.next_id += 1;
        let id = format!("m{}", slots.next_id);
        slots.models.insert(id.clone(), path.to_path_buf());
        Ok(format!("models/{id}/{file}"))
    }

    /// Stores an input body; returns the URL the page fetches it from (once, relative to the
    /// page) and its slot id.
    pub fn put_input(&self, bytes: Vec<u8>) -> (String, String) {
        let mut slots = self.slots.lock().expect("asset slots poisoned");
        slots.next_id += 1;
        let id = format!("t{}", slots.next_id);
        slots.inputs.insert(id.clone(), Bytes::from(bytes));
        (format!("tensors/{id}"), id)
    }

    /// Forgets an input the page never fetched (a call that failed half way).
    pub fn discard_input(&self, id: &str) {
        self.slots.lock().expect("asset slots poisoned").inputs.remove(id);
    }

    /// A fresh URL (relative to the page) for it to POST a body to, and the slot id to collect
    /// it with.
    pub fn output_slot(&self) -> (String, String) {
        let mut slots = self.slots.lock().expect("asset slots poisoned");
        slots.next_id += 1;
        let id = format!("o{}", slots.next_id);
        (format!("tensors/{id}"), id)
    }

    /// The body posted to an output slot, if any; the slot is gone afterwards.
    pub fn take_output(&self, id: &str) -> Option<Bytes> {
        self.slots.lock().expect("asset slots poisoned").outputs.remove(id)
    }

    /// A data channel for one page: the WebSocket path the page connects to (relative to the
    /// page: `ws:` or `wss:` as the page's own scheme), and where the accepted socket arrives.
    /// Each path accepts one connection.
    pub fn open_channel(&self) -> (String, oneshot::Receiver<WebSocket>) {
        let (tx, rx) = oneshot::channel();
        let mut slots = self.slots.lock().expect("asset slots poisoned");
        slots.next_id += 1;
        let id = format!("c{}", slots.next_id);
        slots.channels.insert(id.clone(), tx);
        (format!("channel/{id}"), rx)
    }
}

impl Drop for AssetServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some((_, task)) = self.remote.get_mut().take() {
            task.abort();
        }
    }
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn javascript(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], body).into_response()
}

async fn serve_model(
    State(state): State<AppState>,
    UrlPath((id, _file)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let path = state.slots.lock().expect("asset slots poisoned").models.get(&id).cloned();
    match path {
        Some(path) => match ServeFile::new(path).oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn accept_channel(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(waiting) = state.slots.lock().expect("asset slots poisoned").channels.remove(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    upgrade.max_message_size(MAX_FRAME).max_frame_size(MAX_FRAME).on_upgrade(move |socket| async move {
        let _ = waiting.send(socket);
    })
}

async fn take_input(State(state): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    let bytes = state.slots.lock().expect("asset slots poisoned").inputs.remove(&id);
    match bytes {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")], bytes)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn put_output(State(state): State<AppState>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let mut slots = state.slots.lock().expect("asset slots poisoned");
    slots.outputs.insert(id, body);
    StatusCode::NO_CONTENT
}

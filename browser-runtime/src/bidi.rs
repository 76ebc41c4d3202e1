//! A WebDriver BiDi connection: Firefox's control plane, as CDP is Chromium's.
//!
//! Firefox started with `--remote-debugging-port` serves BiDi directly at `ws://…/session`, with
//! no WebDriver HTTP server in between. The Rust BiDi clients on crates.io start their sessions
//! through such a server (geckodriver, which is not installable here), and webaccel needs four
//! commands of the protocol, so this is the protocol's message layer and no more: commands
//! with ids, their results routed back to the caller, events ignored. Runs and tensors never
//! pass here; they use the page's data channel (`channel.rs`), as with Chromium.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::calls::Calls;

/// What a BiDi command can end in, besides its result.
#[derive(Debug, thiserror::Error)]
pub enum BidiError {
    #[error("the WebDriver BiDi connection closed")]
    Closed,
    /// The browser answered with an error: its code (`unknown command`, `no such frame`, …)
    /// and message.
    #[error("{error}: {message}")]
    Command { error: String, message: String },
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// One BiDi connection with a session started on it.
pub struct Bidi {
    outgoing: mpsc::UnboundedSender<Message>,
    /// Commands waiting for their answers; closed with the connection.
    waiting: Arc<Calls<Result<Value, BidiError>>>,
    alive: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    /// What `session.new` reported: the browser's name and version.
    pub browser_name: String,
    pub browser_version: String,
}

/// A message from the browser: a command's answer (with its `id`) or an event (without).
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl Bidi {
    /// Connects to `url` (the browser's `ws://host:port`) and starts a session.
    pub async fn connect(url: &str) -> Result<Self, BidiError> {
        let endpoint = format!("{}/session", url.trim_end_matches('/'));
        let mut bidi = Bidi::open(&endpoint).await?;
        let started = bidi.command("session.new", json!({"capabilities": {}})).await?;
        let capabilities = &started["capabilities"];
        bidi.browser_name = capabilities["browserName"].as_str().unwrap_or_default().to_string();
        bidi.browser_version = capabilities["browserVersion"].as_str().unwrap_or_default().to_string();
        Ok(bidi)
    }

    /// Connects to the BiDi URL of a session that already exists (a Selenium Grid session made
    /// with `webSocketUrl: true`): there is no `session.new` to send, and the name and version
    /// are the ones the session was created with.
    pub async fn attach(url: &str, browser_name: &str, browser_version: &str) -> Result<Self, BidiError> {
        let mut bidi = Bidi::open(url).await?;
        bidi.browser_name = browser_name.to_string();
        bidi.browser_version = browser_version.to_string();
        Ok(bidi)
    }

    async fn open(endpoint: &str) -> Result<Self, BidiError> {
        let (socket, _) = tokio_tungstenite::connect_async(endpoint)
            .await
            .map_err(|e| BidiError::Connect { url: endpoint.to_string(), reason: e.to_string() })?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<Message>();
        let waiting = Arc::new(Calls::new());
        let (alive_tx, alive) = watch::channel(true);
        let routed = waiting.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = to_send.recv() => {
                        let Some(message) = message else { break };
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => route(&routed, &text),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!("WebDriver BiDi connection ended: {e}");
                            break;
                        }
                        None => break,
                    },
                }
            }
            // Every caller still waiting learns the connection is gone, and no new one waits.
            routed.close();
            let _ = alive_tx.send(false);
        });
        Ok(Bidi { outgoing, waiting, alive, task, browser_name: String::new(), browser_version: String::new() })
    }

    /// Sends `method` with `params` and waits for its result.
    pub async fn command(&self, method: &str, params: Value) -> Result<Value, BidiError> {
        let (id, rx) = self.waiting.open().ok_or(BidiError::Closed)?;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        if self.outgoing.send(Message::text(message)).is_err() {
            self.waiting.forget(id);
            return Err(BidiError::Closed);
        }
        rx.await.unwrap_or(Err(BidiError::Closed))
    }

    /// A receiver that turns false when the connection ends (the browser exited or closed it).
    pub fn liveness(&self) -> watch::Receiver<bool> {
        self.alive.clone()
    }
}

impl Drop for Bidi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands a command's answer to its caller. Events, and answers nobody waits for any more (a
/// timed-out call), are dropped.
fn route(waiting: &Calls<Result<Value, BidiError>>, text: &str) {
    let Ok(incoming) = serde_json::from_str::<Incoming>(text) else {
        tracing::debug!("unreadable WebDriver BiDi message: {text}");
        return;
    };
    let Some(id) = incoming.id else { return };
    let outcome = match incoming.kind.as_str() {
        "success" => Ok(incoming.result),
        _ => Err(BidiError::Command { error: incoming.error, message: incoming.message }),
    };
    waiting.answer(id, outcome);
}

//! The Jupyter kernel: the wire protocol over ZeroMQ (jupyter-zmq-client signs and checks
//! every message with the connection file's HMAC key) in front of the evaluator thread.

use std::path::Path;

use anyhow::{Context, Result};
use jupyter_protocol::{
    CodeMirrorMode, ConnectionInfo, HelpLink, InterruptReply, IoPubWelcome, JupyterMessage, JupyterMessageContent,
    KernelInfoReply, LanguageInfo, ReplyStatus, ShutdownReply,
};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection, create_kernel_iopub_xpub_connection,
    create_kernel_shell_connection, create_kernel_stdin_connection, KernelIoPubXPubConnection, SubscriptionEvent,
};
use tokio::sync::mpsc;
use webaccel_scripting::{Config, ScriptError};

use crate::evaluator::Evaluator;
use crate::progress::Notebook;
use crate::rust_cells::RustCells;
use crate::shell::{CellError, Incoming, Shell};
use crate::wire::{read_request, Request};

/// How long a shutdown request waits for the running cell to stop and the evaluator to close
/// the browsers, before closing them itself.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

pub async fn run(connection_file: &Path) -> Result<()> {
    let text = tokio::fs::read_to_string(connection_file)
        .await
        .with_context(|| format!("cannot read the connection file {}", connection_file.display()))?;
    let info: ConnectionInfo =
        serde_json::from_str(&text).context("the connection file is not valid Jupyter connection JSON")?;
    let session_id = uuid::Uuid::new_v4().to_string();

    let mut heartbeat = create_kernel_heartbeat_connection(&info).await?;
    let (shell_tx, mut shell_rx) = create_kernel_shell_connection(&info, &session_id).await?.split();
    let mut control = create_kernel_control_connection(&info, &session_id).await?;
    let _stdin = create_kernel_stdin_connection(&info, &session_id).await?;
    let iopub = spawn_iopub(create_kernel_iopub_xpub_connection(&info, &session_id).await?);

    let (evaluator, prints) = Evaluator::start(Config::default()).context("cannot start the Rhai host")?;
    let progress = std::sync::Arc::new(Notebook::default());
    evaluator.services.set_progress(progress.clone());
    let evaluator = std::sync::Arc::new(evaluator);
    let rust = std::sync::Arc::new(RustCells::new(evaluator.clone()));
    let signalled = rust.clone();
    crate::on_signals(evaluator.services.clone(), false, move || signalled.interrupt());

    tokio::spawn(async move { while heartbeat.single_heartbeat().await.is_ok() {} });

    // The control channel runs on its own task so shutdown and interrupt are never stuck
    // behind a long cell.
    let (shutdown_tx, shutdown_rx) = mpsc::channel::<()>(1);
    let control_eval = evaluator.clone();
    let control_rust = rust.clone();
    tokio::spawn(async move {
        while let Ok(message) = control.read().await {
            match &message.content {
                JupyterMessageContent::KernelInfoRequest(_) => {
                    let _ = control.send(kernel_info().as_child_of(&message)).await;
                }
                JupyterMessageContent::InterruptRequest(_) => {
                    control_eval.interrupt();
                    control_rust.interrupt();
                    let _ = control.send(InterruptReply::new().as_child_of(&message)).await;
                }
                JupyterMessageContent::ShutdownRequest(req) => {
                    // A running cell stops first (within a second), so the shutdown never
                    // queues behind it; a cell that does not stop in time is left to exit.
                    control_eval.interrupt();
                    control_rust.shutdown().await;
                    if tokio::time::timeout(SHUTDOWN_WAIT, control_eval.shutdown()).await.is_err() {
                        tracing::warn!("the running cell did not stop in time; closing the browsers under it");
                        // Services run their own runtime, which cannot be blocked on from
                        // this one's threads.
                        let (services, (done, closed)) =
                            (control_eval.services.clone(), tokio::sync::oneshot::channel());
                        std::thread::spawn(move || {
                            services.shutdown();
                            let _ = done.send(());
                        });
                        let _ = closed.await;
                    }
                    let reply = ShutdownReply { restart: req.restart, status: ReplyStatus::Ok, error: None };
                    let _ = control.send(reply.as_child_of(&message)).await;
                    let _ = shutdown_tx.send(()).await;
                    return;
                }
                _ => {}
            }
        }
    });

    // One task reads the shell socket, so that requests arriving during a cell are seen at once:
    // completion and inspection are answered then, from the scope the last cell left.
    let (requests_tx, requests) = mpsc::unbounded_channel::<Incoming>();
    tokio::spawn(async move {
        loop {
            let incoming = match read_request(&mut shell_rx).await {
                Ok(Request::Parsed(message)) => Ok(message),
                Ok(Request::Unreadable { message, error }) => Err((message, error)),
                Err(e) => {
                    tracing::warn!("dropping a shell message that cannot be answered: {e}");
                    continue;
                }
            };
            if requests_tx.send(incoming).is_err() {
                return;
            }
        }
    });
    let shell = Shell::new(shell_tx, iopub, evaluator, rust, prints, progress);
    shell.serve(requests, shutdown_rx).await;
    Ok(())
}

pub(crate) type IoPub = mpsc::UnboundedSender<JupyterMessage>;

/// One task owns the iopub socket: it publishes what the kernel queues, in order, and answers
/// each new subscription with JEP 65's welcome, so clients know when their subscription is live.
fn spawn_iopub(mut socket: KernelIoPubXPubConnection) -> IoPub {
    let (tx, mut rx) = mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = rx.recv() => {
                    let Some(message) = message else { break };
                    if let Err(e) = socket.send(message).await {
                        tracing::warn!("cannot publish on iopub: {e}");
                    }
                }
                event = socket.recv_subscription() => {
                    if let Ok(SubscriptionEvent::Subscribe(topic)) = event {
                        let _ = socket.send(IoPubWelcome::new(topic).into()).await;
                    }
                }
            }
        }
    });
    tx
}

pub(crate) async fn publish(iopub: &IoPub, message: JupyterMessage) {
    if iopub.send(message).is_err() {
        tracing::warn!("iopub publisher has stopped");
    }
}

pub(crate) fn describe(error: &ScriptError) -> CellError {
    let mut described = CellError::new(error.kind, error.message.clone());
    if let Some(line) = error.line {
        described.traceback.push(format!("at line {line} of the cell"));
    }
    described
}

pub(crate) fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".to_string(),
        implementation: "webaccel".to_string(),
        implementation_version: env!("CARGO_PKG_VERSION").to_string(),
        language_info: LanguageInfo {
            name: "rhai".to_string(),
            version: "1".to_string(),
            mimetype: Some("text/x-rhai".to_string()),
            file_extension: Some(".rhai".to_string()),
            // Rhai's syntax is close enough to Rust's for highlighting.
            pygments_lexer: Some("rust".to_string()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".to_string())),
            nbconvert_exporter: None,
        },
        banner: "webaccel: measure ML models in real browsers (Rhai). A cell whose first line is %%rust runs \
                 Rust through evcxr; webaccel_cell::sql(query) reads the results there"
            .to_string(),
        help_links: vec![
            HelpLink { text: "Rust cells (evcxr)".to_string(), url: "https://github.com/evcxr/evcxr".to_string() },
            HelpLink { text: "Rhai".to_string(), url: "https://rhai.rs/book/".to_string() },
        ],
        debugger: false,
        error: None,
    }
}

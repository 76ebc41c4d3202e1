//! The Jupyter kernel: the wire protocol over ZeroMQ (jupyter-zmq-client signs and checks
//! every message with the connection file's HMAC key) in front of the evaluator thread.

use std::path::Path;

use anyhow::{Context, Result};
use jupyter_protocol::{
    ClearOutput, CodeMirrorMode, CommInfoReply, CompleteReply, ConnectionInfo, DisplayData, ErrorOutput, ExecuteInput,
    ExecuteReply, ExecuteResult, ExecutionCount, ExpressionResult, HistoryReply, InspectReply, InterruptReply,
    IoPubWelcome, IsCompleteReply, IsCompleteReplyStatus, JupyterMessage, JupyterMessageContent, KernelInfoReply,
    LanguageInfo, Media, MediaType, ReplyError, ReplyStatus, ShutdownReply, Status, StreamContent, Transient,
    UpdateDisplayData,
};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection, create_kernel_iopub_xpub_connection,
    create_kernel_shell_connection, create_kernel_stdin_connection, KernelIoPubXPubConnection, SubscriptionEvent,
};
use tokio::sync::mpsc;
use webaccel_scripting::{Completeness, Config, ScriptError, Stream};

use crate::evaluator::{Emitted, Evaluator, Outcome};
use crate::history::History;
use crate::media::bundle;
use crate::progress::{Notebook, Shown};
use crate::wire::{error_reply, read_request, Request};

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
    let (mut shell_tx, mut shell_rx) = create_kernel_shell_connection(&info, &session_id).await?.split();
    let mut control = create_kernel_control_connection(&info, &session_id).await?;
    let _stdin = create_kernel_stdin_connection(&info, &session_id).await?;
    let iopub = spawn_iopub(create_kernel_iopub_xpub_connection(&info, &session_id).await?);

    let (evaluator, mut prints) = Evaluator::start(Config::default()).context("cannot start the Rhai host")?;
    let progress = std::sync::Arc::new(Notebook::default());
    evaluator.services.set_progress(progress.clone());
    crate::on_signals(evaluator.services.clone(), false);
    let evaluator = std::sync::Arc::new(evaluator);

    tokio::spawn(async move { while heartbeat.single_heartbeat().await.is_ok() {} });

    // The control channel runs on its own task so shutdown and interrupt are never stuck
    // behind a long cell.
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel::<()>(1);
    let control_eval = evaluator.clone();
    tokio::spawn(async move {
        while let Ok(message) = control.read().await {
            match &message.content {
                JupyterMessageContent::KernelInfoRequest(_) => {
                    let _ = control.send(kernel_info().as_child_of(&message)).await;
                }
                JupyterMessageContent::InterruptRequest(_) => {
                    control_eval.interrupt();
                    let _ = control.send(InterruptReply::new().as_child_of(&message)).await;
                }
                JupyterMessageContent::ShutdownRequest(req) => {
                    // A running cell stops first (within a second), so the shutdown never
                    // queues behind it; a cell that does not stop in time is left to exit.
                    control_eval.interrupt();
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

    let mut count = ExecutionCount::new(0);
    let mut history = History::open(crate::history::default_path());
    loop {
        tokio::select! {
            request = read_request(&mut shell_rx) => {
                let message = match request {
                    Ok(Request::Parsed(m)) => m,
                    Ok(Request::Unreadable { message, error }) => {
                        tracing::warn!("{error}");
                        publish(&iopub, Status::busy().as_child_of(&message)).await;
                        if let Err(e) = shell_tx.send(error_reply(&message, &error)).await {
                            tracing::warn!("cannot send a shell reply: {e}");
                        }
                        publish(&iopub, Status::idle().as_child_of(&message)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("dropping a shell message that cannot be answered: {e}");
                        continue;
                    }
                };
                publish(&iopub, Status::busy().as_child_of(&message)).await;
                let reply = match &message.content {
                    JupyterMessageContent::KernelInfoRequest(_) => Some(kernel_info().as_child_of(&message)),
                    JupyterMessageContent::ExecuteRequest(req) => {
                        let (status, error) = execute(&iopub, &evaluator, &mut prints, &progress, &message, &req.code, req.silent, req.store_history, &mut count, &mut history).await;
                        // Evaluated after the cell, in its scope, as IPython does; not after a
                        // failed cell.
                        let expressions = match (&status, &req.user_expressions) {
                            (ReplyStatus::Ok, Some(wanted)) => user_expressions(&evaluator, wanted).await,
                            _ => Default::default(),
                        };
                        Some(ExecuteReply { status, execution_count: count, payload: vec![], user_expressions: Some(expressions), error }.as_child_of(&message))
                    }
                    JupyterMessageContent::IsCompleteRequest(req) => {
                        let code = req.code.clone();
                        let status = match evaluator.ask(move |host| host.completeness(&code)).await {
                            Some(Completeness::Complete) => IsCompleteReplyStatus::Complete,
                            Some(Completeness::Incomplete) => IsCompleteReplyStatus::Incomplete,
                            Some(Completeness::Invalid) => IsCompleteReplyStatus::Invalid,
                            None => IsCompleteReplyStatus::Unknown,
                        };
                        let indent = if status == IsCompleteReplyStatus::Incomplete { "    " } else { "" };
                        Some(IsCompleteReply { status, indent: indent.into() }.as_child_of(&message))
                    }
                    JupyterMessageContent::CompleteRequest(req) => {
                        let (code, cursor) = (req.code.clone(), req.cursor_pos);
                        let (cursor_start, cursor_end, matches) =
                            evaluator.ask(move |host| host.complete(&code, cursor)).await.unwrap_or((cursor, cursor, vec![]));
                        Some(CompleteReply {
                            matches, cursor_start, cursor_end,
                            metadata: Default::default(), status: ReplyStatus::Ok, error: None,
                        }.as_child_of(&message))
                    }
                    JupyterMessageContent::InspectRequest(req) => {
                        let (code, cursor) = (req.code.clone(), req.cursor_pos);
                        let help = evaluator.ask(move |host| host.inspect(&code, cursor)).await.flatten();
                        let data = help.map_or_else(Media::default, |text| Media::new(vec![MediaType::Plain(text)]));
                        Some(InspectReply {
                            found: !data.content.is_empty(), data, metadata: Default::default(), status: ReplyStatus::Ok, error: None,
                        }.as_child_of(&message))
                    }
                    JupyterMessageContent::HistoryRequest(req) => Some(HistoryReply::new(history.answer(req)).as_child_of(&message)),
                    JupyterMessageContent::CommInfoRequest(_) => Some(CommInfoReply { status: ReplyStatus::Ok, comms: Default::default(), error: None }.as_child_of(&message)),
                    _ => None,
                };
                if let Some(reply) = reply {
                    if let Err(e) = shell_tx.send(reply).await {
                        tracing::warn!("cannot send a shell reply: {e}");
                    }
                }
                publish(&iopub, Status::idle().as_child_of(&message)).await;
            }
            _ = shutdown_rx.recv() => break,
        }
    }
    Ok(())
}

type IoPub = mpsc::UnboundedSender<JupyterMessage>;

/// A script's output as iopub shows it: a stream message, or `display_data`.
fn emitted_message(emitted: Emitted, parent: &JupyterMessage) -> JupyterMessage {
    match emitted {
        Emitted::Text(Stream::Stdout, text) => StreamContent::stdout(&text).as_child_of(parent),
        Emitted::Text(Stream::Stderr, text) => StreamContent::stderr(&text).as_child_of(parent),
        Emitted::Display(display) => DisplayData::new(bundle(&display)).as_child_of(parent),
        Emitted::Clear { wait } => ClearOutput { wait }.as_child_of(parent),
    }
}

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

async fn publish(iopub: &IoPub, message: JupyterMessage) {
    if iopub.send(message).is_err() {
        tracing::warn!("iopub publisher has stopped");
    }
}

/// The notebook's view of a long call's progress: one display per cell, created when there is
/// first something to show and updated in place (by its `display_id`) after.
struct ProgressDisplay<'a> {
    parent: &'a JupyterMessage,
    id: String,
    last: Shown,
    created: bool,
}

impl<'a> ProgressDisplay<'a> {
    fn new(parent: &'a JupyterMessage) -> Self {
        ProgressDisplay {
            parent,
            id: format!("webaccel-progress-{}", uuid::Uuid::new_v4()),
            last: Shown::Nothing,
            created: false,
        }
    }

    async fn show(&mut self, iopub: &IoPub, shown: Shown) {
        if shown == self.last || shown == Shown::Nothing || (shown == Shown::Ended && !self.created) {
            return;
        }
        let data = match &shown {
            Shown::Progress { plain, html } => {
                Media::new(vec![MediaType::Plain(plain.clone()), MediaType::Html(html.clone())])
            }
            _ => Media::new(vec![MediaType::Plain(String::new())]),
        };
        let message = if self.created {
            UpdateDisplayData::new(data, &self.id).as_child_of(self.parent)
        } else {
            self.created = true;
            DisplayData {
                data,
                metadata: Default::default(),
                transient: Some(Transient { display_id: Some(self.id.clone()) }),
            }
            .as_child_of(self.parent)
        };
        publish(iopub, message).await;
        self.last = shown;
    }
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    iopub: &IoPub,
    evaluator: &Evaluator,
    prints: &mut mpsc::UnboundedReceiver<Emitted>,
    progress: &Notebook,
    parent: &JupyterMessage,
    code: &str,
    silent: bool,
    store_history: bool,
    count: &mut ExecutionCount,
    history: &mut History,
) -> (ReplyStatus, Option<Box<ReplyError>>) {
    let stored = !silent && store_history;
    if stored {
        count.0 += 1;
    }
    publish(iopub, ExecuteInput { code: code.to_string(), execution_count: *count }.as_child_of(parent)).await;

    // Stream what the script prints while it runs, not only when it ends, and keep the
    // progress display of a long call current.
    progress.reset();
    let mut display = ProgressDisplay::new(parent);
    let mut tick = tokio::time::interval(Notebook::PERIOD);
    let evaluation = evaluator.eval(code.to_string());
    tokio::pin!(evaluation);
    let outcome: Outcome = loop {
        tokio::select! {
            Some(emitted) = prints.recv() => {
                if !silent {
                    publish(iopub, emitted_message(emitted, parent)).await;
                }
            }
            _ = tick.tick() => {
                if !silent {
                    display.show(iopub, progress.shown()).await;
                }
            }
            outcome = &mut evaluation => break outcome,
        }
    };
    while let Ok(emitted) = prints.try_recv() {
        if !silent {
            publish(iopub, emitted_message(emitted, parent)).await;
        }
    }
    display.show(iopub, Shown::Ended).await;

    if stored {
        let output = outcome.as_ref().ok().and_then(|shown| shown.as_ref()).map(|display| display.plain.clone());
        history.record(count.0, code, output);
    }
    match outcome {
        Ok(Some(display)) if !silent => {
            let result = ExecuteResult {
                execution_count: *count,
                data: bundle(&display),
                metadata: Default::default(),
                transient: Some(Transient::default()),
            };
            publish(iopub, result.as_child_of(parent)).await;
            (ReplyStatus::Ok, None)
        }
        Ok(_) => (ReplyStatus::Ok, None),
        Err(error) => {
            let (ename, evalue, traceback) = describe(&error);
            publish(
                iopub,
                ErrorOutput { ename: ename.clone(), evalue: evalue.clone(), traceback: traceback.clone() }
                    .as_child_of(parent),
            )
            .await;
            (ReplyStatus::Error, Some(Box::new(ReplyError { ename, evalue, traceback })))
        }
    }
}

/// Each user expression's value as a MIME bundle, or its error; evaluated without touching the
/// history or the execution count.
async fn user_expressions(
    evaluator: &Evaluator,
    wanted: &std::collections::HashMap<String, String>,
) -> std::collections::HashMap<String, ExpressionResult> {
    let mut results = std::collections::HashMap::new();
    for (name, code) in wanted {
        let result = match evaluator.eval(code.clone()).await {
            Ok(shown) => ExpressionResult::Ok {
                data: shown.as_ref().map_or_else(Media::default, bundle),
                metadata: Default::default(),
            },
            Err(error) => {
                let (ename, evalue, traceback) = describe(&error);
                ExpressionResult::Error { ename, evalue, traceback }
            }
        };
        results.insert(name.clone(), result);
    }
    results
}

fn describe(error: &ScriptError) -> (String, String, Vec<String>) {
    let mut traceback = vec![format!("\u{1b}[0;31m{}\u{1b}[0m: {}", error.kind, error.message)];
    if let Some(line) = error.line {
        traceback.push(format!("at line {line} of the cell"));
    }
    (error.kind.to_string(), error.message.clone(), traceback)
}

fn kernel_info() -> KernelInfoReply {
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
        banner: "webaccel: measure ML models in real browsers (Rhai)".to_string(),
        help_links: vec![],
        debugger: false,
        error: None,
    }
}

//! The shell channel: each request's busy and idle, its reply, and the execution of cells.
//! Requests come from the task that reads the socket (`kernel.rs`), so while a cell runs the
//! ones that need no evaluation (completion, inspection, kernel and comm info, history, and
//! the error reply to an unreadable request) are answered at once, from the scope the last
//! cell left; the others wait for the cell, in order.

use std::collections::VecDeque;
use std::sync::Arc;

use jupyter_protocol::{
    ClearOutput, CommInfoReply, CompleteReply, DisplayData, ErrorOutput, ExecuteInput, ExecuteReply, ExecuteResult,
    ExecutionCount, ExpressionResult, HistoryReply, InspectReply, IsCompleteReply, IsCompleteReplyStatus,
    JupyterMessage, JupyterMessageContent, Media, MediaType, ReplyError, ReplyStatus, Status, StreamContent, Transient,
    UpdateDisplayData,
};
use jupyter_zmq_client::Connection;
use tokio::sync::mpsc;
use webaccel_scripting::{Completeness, Stream};

use crate::evaluator::{Emitted, Evaluator, Outcome};
use crate::history::History;
use crate::kernel::{describe, kernel_info, publish, IoPub};
use crate::media::bundle;
use crate::progress::{Notebook, Shown};
use crate::rust_cells::{is_rust_cell, RustCells};
use crate::wire::error_reply;

/// A shell request as read: parsed, or signed and addressed but unreadable (with why).
pub(crate) type Incoming = Result<JupyterMessage, (JupyterMessage, String)>;

type ShellSender = Connection<zeromq::RouterSendHalf>;

/// A cell's value as Jupyter shows it, and its text for the history.
pub(crate) struct CellValue {
    pub data: Media,
    pub plain: String,
}

/// A cell's error as Jupyter shows it.
#[derive(Debug)]
pub(crate) struct CellError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

impl CellError {
    pub fn new(ename: &str, evalue: String) -> CellError {
        let traceback = vec![format!("\u{1b}[0;31m{ename}\u{1b}[0m: {evalue}")];
        CellError { ename: ename.into(), evalue, traceback }
    }
}

/// How a cell ended, Rhai or Rust.
pub(crate) type CellOutcome = Result<Option<CellValue>, CellError>;

pub(crate) struct Shell {
    tx: ShellSender,
    iopub: IoPub,
    evaluator: Arc<Evaluator>,
    rust: Arc<RustCells>,
    prints: mpsc::UnboundedReceiver<Emitted>,
    progress: Arc<Notebook>,
    count: ExecutionCount,
    history: History,
    /// Requests that arrived during a cell and wait for it.
    pending: VecDeque<JupyterMessage>,
}

impl Shell {
    pub fn new(
        tx: ShellSender,
        iopub: IoPub,
        evaluator: Arc<Evaluator>,
        rust: Arc<RustCells>,
        prints: mpsc::UnboundedReceiver<Emitted>,
        progress: Arc<Notebook>,
    ) -> Self {
        Shell {
            tx,
            iopub,
            evaluator,
            rust,
            prints,
            progress,
            count: ExecutionCount::new(0),
            history: History::open(crate::history::default_path()),
            pending: VecDeque::new(),
        }
    }

    /// Answers requests until the channel closes or a shutdown is asked for.
    pub async fn serve(mut self, mut requests: mpsc::UnboundedReceiver<Incoming>, mut shutdown: mpsc::Receiver<()>) {
        loop {
            // A shutdown asked for during a cell wins over the requests queued behind it.
            if shutdown.try_recv().is_ok() {
                return;
            }
            let message = match self.pending.pop_front() {
                Some(message) => message,
                None => tokio::select! {
                    biased;
                    _ = shutdown.recv() => return,
                    incoming = requests.recv() => match incoming {
                        Some(Ok(message)) => message,
                        Some(Err((message, error))) => {
                            self.answer(&message, Some(unreadable(&message, &error))).await;
                            continue;
                        }
                        None => return,
                    },
                },
            };
            let reply = match &message.content {
                JupyterMessageContent::ExecuteRequest(_) => {
                    publish(&self.iopub, Status::busy().as_child_of(&message)).await;
                    let reply = self.execute(&message, &mut requests).await;
                    let failed = matches!(&reply.content, JupyterMessageContent::ExecuteReply(r) if r.status == ReplyStatus::Error);
                    self.send(reply).await;
                    publish(&self.iopub, Status::idle().as_child_of(&message)).await;
                    if failed && matches!(&message.content, JupyterMessageContent::ExecuteRequest(r) if r.stop_on_error) {
                        self.abort_queued(&mut requests).await;
                    }
                    continue;
                }
                // A Rust cell is sent whole: evcxr reports what is missing when it compiles.
                JupyterMessageContent::IsCompleteRequest(req) if is_rust_cell(&req.code) => Some(
                    IsCompleteReply { status: IsCompleteReplyStatus::Complete, indent: String::new() }
                        .as_child_of(&message),
                ),
                JupyterMessageContent::CompleteRequest(req) if is_rust_cell(&req.code) && self.rust.completes() => {
                    let at = byte_offset(&req.code, req.cursor_pos);
                    let (start, end, matches) = self.rust.complete(&req.code, at).await;
                    Some(completions(&message, &req.code, (start, end), matches))
                }
                JupyterMessageContent::InspectRequest(req) if is_rust_cell(&req.code) && self.rust.completes() => {
                    let help = self.rust.inspect(&req.code, byte_offset(&req.code, req.cursor_pos)).await;
                    Some(inspection(&message, help))
                }
                JupyterMessageContent::IsCompleteRequest(req) => {
                    let code = req.code.clone();
                    let status = match self.evaluator.ask(move |host| host.completeness(&code)).await {
                        Some(Completeness::Complete) => IsCompleteReplyStatus::Complete,
                        Some(Completeness::Incomplete) => IsCompleteReplyStatus::Incomplete,
                        Some(Completeness::Invalid) => IsCompleteReplyStatus::Invalid,
                        None => IsCompleteReplyStatus::Unknown,
                    };
                    let indent = if status == IsCompleteReplyStatus::Incomplete { "    " } else { "" };
                    Some(IsCompleteReply { status, indent: indent.into() }.as_child_of(&message))
                }
                _ => self.quick_reply(&message),
            };
            self.answer(&message, reply).await;
        }
    }

    /// After a cell failed (or was interrupted) with `stop_on_error`, as Run All sends: the
    /// cells already queued behind it are answered `aborted` without running, as ipykernel
    /// does, so a notebook stops at its first error. Other requests keep their turn.
    async fn abort_queued(&mut self, requests: &mut mpsc::UnboundedReceiver<Incoming>) {
        while let Ok(incoming) = requests.try_recv() {
            match incoming {
                Ok(message) => self.pending.push_back(message),
                Err((message, error)) => self.answer(&message, Some(unreadable(&message, &error))).await,
            }
        }
        let mut kept = VecDeque::new();
        for message in std::mem::take(&mut self.pending) {
            if !matches!(message.content, JupyterMessageContent::ExecuteRequest(_)) {
                kept.push_back(message);
                continue;
            }
            let aborted = ExecuteReply {
                status: ReplyStatus::Aborted,
                execution_count: self.count,
                payload: vec![],
                user_expressions: None,
                error: None,
            };
            self.answer(&message, Some(aborted.as_child_of(&message))).await;
        }
        self.pending = kept;
    }

    /// Busy, the reply (if the request has one), idle.
    async fn answer(&mut self, message: &JupyterMessage, reply: Option<JupyterMessage>) {
        publish(&self.iopub, Status::busy().as_child_of(message)).await;
        if let Some(reply) = reply {
            self.send(reply).await;
        }
        publish(&self.iopub, Status::idle().as_child_of(message)).await;
    }

    async fn send(&mut self, reply: JupyterMessage) {
        if let Err(e) = self.tx.send(reply).await {
            tracing::warn!("cannot send a shell reply: {e}");
        }
    }

    /// The reply to a request that needs no evaluation, or None for one that does (or that
    /// has no reply).
    fn quick_reply(&self, message: &JupyterMessage) -> Option<JupyterMessage> {
        let view = self.evaluator.view();
        Some(match &message.content {
            JupyterMessageContent::KernelInfoRequest(_) => kernel_info().as_child_of(message),
            // Rust cells when evcxr cannot answer (or is busy with a cell): nothing to offer.
            JupyterMessageContent::CompleteRequest(req) if is_rust_cell(&req.code) => {
                let at = byte_offset(&req.code, req.cursor_pos);
                completions(message, &req.code, (at, at), vec![])
            }
            JupyterMessageContent::InspectRequest(req) if is_rust_cell(&req.code) => inspection(message, None),
            JupyterMessageContent::CompleteRequest(req) => {
                let (cursor_start, cursor_end, matches) = view.complete(&req.code, req.cursor_pos);
                CompleteReply {
                    matches,
                    cursor_start,
                    cursor_end,
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                }
                .as_child_of(message)
            }
            JupyterMessageContent::InspectRequest(req) => inspection(message, view.inspect(&req.code, req.cursor_pos)),
            JupyterMessageContent::HistoryRequest(req) => {
                HistoryReply::new(self.history.answer(req)).as_child_of(message)
            }
            JupyterMessageContent::CommInfoRequest(_) => {
                CommInfoReply { status: ReplyStatus::Ok, comms: Default::default(), error: None }.as_child_of(message)
            }
            _ => return None,
        })
    }

    /// Runs a cell: its input, its output as it comes, the progress display of a long call,
    /// its result or error, and the `execute_reply`. Requests that arrive meanwhile are
    /// answered now when they can be, else kept for after.
    async fn execute(
        &mut self,
        parent: &JupyterMessage,
        requests: &mut mpsc::UnboundedReceiver<Incoming>,
    ) -> JupyterMessage {
        let JupyterMessageContent::ExecuteRequest(req) = &parent.content else { unreachable!("an execute request") };
        let (silent, stored) = (req.silent, !req.silent && req.store_history);
        if stored {
            self.count.0 += 1;
        }
        let iopub = self.iopub.clone();
        publish(&iopub, ExecuteInput { code: req.code.clone(), execution_count: self.count }.as_child_of(parent)).await;

        // Stream what the script prints while it runs, not only when it ends, and keep the
        // progress display of a long call current.
        self.progress.reset();
        let mut display = ProgressDisplay::new(parent);
        let mut tick = tokio::time::interval(Notebook::PERIOD);
        let evaluation: std::pin::Pin<Box<dyn std::future::Future<Output = CellOutcome>>> = if is_rust_cell(&req.code) {
            let (rust, code, printer) = (self.rust.clone(), req.code.clone(), self.evaluator.printer());
            Box::pin(async move { rust.execute(&code, &printer).await })
        } else {
            let (evaluator, code) = (self.evaluator.clone(), req.code.clone());
            Box::pin(async move { rhai_outcome(evaluator.eval(code).await) })
        };
        tokio::pin!(evaluation);
        let outcome: CellOutcome = loop {
            tokio::select! {
                Some(emitted) = self.prints.recv() => {
                    if !silent {
                        publish(&iopub, emitted_message(emitted, parent)).await;
                    }
                }
                _ = tick.tick() => {
                    if !silent {
                        display.show(&iopub, self.progress.shown()).await;
                    }
                }
                Some(incoming) = requests.recv() => match incoming {
                    Ok(message) => match self.quick_reply(&message) {
                        Some(reply) => self.answer(&message, Some(reply)).await,
                        None => self.pending.push_back(message),
                    },
                    Err((message, error)) => self.answer(&message, Some(unreadable(&message, &error))).await,
                },
                outcome = &mut evaluation => break outcome,
            }
        };
        while let Ok(emitted) = self.prints.try_recv() {
            if !silent {
                publish(&iopub, emitted_message(emitted, parent)).await;
            }
        }
        display.show(&iopub, Shown::Ended).await;

        if stored {
            let output = outcome.as_ref().ok().and_then(|shown| shown.as_ref()).map(|value| value.plain.clone());
            self.history.record(self.count.0, &req.code, output);
        }
        let (status, error) = match outcome {
            Ok(Some(value)) if !silent => {
                let result = ExecuteResult {
                    execution_count: self.count,
                    data: value.data,
                    metadata: Default::default(),
                    transient: Some(Transient::default()),
                };
                publish(&iopub, result.as_child_of(parent)).await;
                (ReplyStatus::Ok, None)
            }
            Ok(_) => (ReplyStatus::Ok, None),
            Err(CellError { ename, evalue, traceback }) => {
                publish(
                    &iopub,
                    ErrorOutput { ename: ename.clone(), evalue: evalue.clone(), traceback: traceback.clone() }
                        .as_child_of(parent),
                )
                .await;
                (ReplyStatus::Error, Some(Box::new(ReplyError { ename, evalue, traceback })))
            }
        };
        // Evaluated after the cell, in its scope, as IPython does; not after a failed cell.
        let expressions = match (&status, &req.user_expressions) {
            (ReplyStatus::Ok, Some(wanted)) => user_expressions(&self.evaluator, wanted).await,
            _ => Default::default(),
        };
        ExecuteReply {
            status,
            execution_count: self.count,
            payload: vec![],
            user_expressions: Some(expressions),
            error,
        }
        .as_child_of(parent)
    }
}

/// A Rhai cell's outcome as the shell shows it.
fn rhai_outcome(outcome: Outcome) -> CellOutcome {
    match outcome {
        Ok(shown) => Ok(shown.map(|display| CellValue { data: bundle(&display), plain: display.plain })),
        Err(error) => Err(describe(&error)),
    }
}

/// Jupyter counts cursor positions in characters; evcxr in bytes.
fn byte_offset(code: &str, chars: usize) -> usize {
    code.char_indices().nth(chars).map_or(code.len(), |(at, _)| at)
}

fn char_offset(code: &str, bytes: usize) -> usize {
    code.get(..bytes).map_or_else(|| code.chars().count(), |head| head.chars().count())
}

/// A completion reply; `range` in bytes.
fn completions(message: &JupyterMessage, code: &str, range: (usize, usize), matches: Vec<String>) -> JupyterMessage {
    CompleteReply {
        matches,
        cursor_start: char_offset(code, range.0),
        cursor_end: char_offset(code, range.1),
        metadata: Default::default(),
        status: ReplyStatus::Ok,
        error: None,
    }
    .as_child_of(message)
}

fn inspection(message: &JupyterMessage, help: Option<String>) -> JupyterMessage {
    let data = help.map_or_else(Media::default, |text| Media::new(vec![MediaType::Plain(text)]));
    InspectReply {
        found: !data.content.is_empty(),
        data,
        metadata: Default::default(),
        status: ReplyStatus::Ok,
        error: None,
    }
    .as_child_of(message)
}

fn unreadable(message: &JupyterMessage, error: &str) -> JupyterMessage {
    tracing::warn!("{error}");
    error_reply(message, error)
}

/// A script's output as iopub shows it: a stream message, or `display_data`.
fn emitted_message(emitted: Emitted, parent: &JupyterMessage) -> JupyterMessage {
    match emitted {
        Emitted::Text(Stream::Stdout, text) => StreamContent::stdout(&text).as_child_of(parent),
        Emitted::Text(Stream::Stderr, text) => StreamContent::stderr(&text).as_child_of(parent),
        Emitted::Display(display) => DisplayData::new(bundle(&display)).as_child_of(parent),
        Emitted::Clear { wait } => ClearOutput { wait }.as_child_of(parent),
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
                let CellError { ename, evalue, traceback } = describe(&error);
                ExpressionResult::Error { ename, evalue, traceback }
            }
        };
        results.insert(name.clone(), result);
    }
    results
}

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
use crate::wire::error_reply;

/// A shell request as read: parsed, or signed and addressed but unreadable (with why).
pub(crate) type Incoming = Result<JupyterMessage, (JupyterMessage, String)>;

type ShellSender = Connection<zeromq::RouterSendHalf>;

pub(crate) struct Shell {
    tx: ShellSender,
    iopub: IoPub,
    evaluator: Arc<Evaluator>,
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
        prints: mpsc::UnboundedReceiver<Emitted>,
        progress: Arc<Notebook>,
    ) -> Self {
        Shell {
            tx,
            iopub,
            evaluator,
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
            let message = match self.pending.pop_front() {
                Some(message) => message,
                None => tokio::select! {
                    incoming = requests.recv() => match incoming {
                        Some(Ok(message)) => message,
                        Some(Err((message, error))) => {
                            self.answer(&message, Some(unreadable(&message, &error))).await;
                            continue;
                        }
                        None => return,
                    },
                    _ = shutdown.recv() => return,
                },
            };
            let reply = match &message.content {
                JupyterMessageContent::ExecuteRequest(_) => {
                    publish(&self.iopub, Status::busy().as_child_of(&message)).await;
                    let reply = self.execute(&message, &mut requests).await;
                    self.send(reply).await;
                    publish(&self.iopub, Status::idle().as_child_of(&message)).await;
                    continue;
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
            JupyterMessageContent::InspectRequest(req) => {
                let help = view.inspect(&req.code, req.cursor_pos);
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
        let evaluator = self.evaluator.clone();
        let evaluation = evaluator.eval(req.code.clone());
        tokio::pin!(evaluation);
        let outcome: Outcome = loop {
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
            let output = outcome.as_ref().ok().and_then(|shown| shown.as_ref()).map(|display| display.plain.clone());
            self.history.record(self.count.0, &req.code, output);
        }
        let (status, error) = match outcome {
            Ok(Some(display)) if !silent => {
                let result = ExecuteResult {
                    execution_count: self.count,
                    data: bundle(&display),
                    metadata: Default::default(),
                    transient: Some(Transient::default()),
                };
                publish(&iopub, result.as_child_of(parent)).await;
                (ReplyStatus::Ok, None)
            }
            Ok(_) => (ReplyStatus::Ok, None),
            Err(error) => {
                let (ename, evalue, traceback) = describe(&error);
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
                let (ename, evalue, traceback) = describe(&error);
                ExpressionResult::Error { ename, evalue, traceback }
            }
        };
        results.insert(name.clone(), result);
    }
    results
}

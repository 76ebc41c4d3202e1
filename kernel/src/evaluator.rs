//! The thread that owns the Rhai host. Rhai and the browser calls under it block, so they run
//! here, off the kernel's async runtime; the kernel talks to this thread through channels.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc as async_mpsc, oneshot};
use webaccel_scripting::{
    render, Config, Display, Interrupt, ScriptError, ScriptHost, Services, SessionView, Shown, Stream,
};

pub type Outcome = Result<Option<Display>, ScriptError>;

/// What a running script emits before its value: lines on a stream, and `display(...)` values.
pub enum Emitted {
    Text(Stream, String),
    Display(Display),
    /// `clear_output(wait)`.
    Clear {
        wait: bool,
    },
}

enum Job {
    Eval {
        code: String,
        done: oneshot::Sender<Outcome>,
    },
    /// A question about the session that does not run code (completion, inspection).
    Ask(Box<dyn FnOnce(&ScriptHost) + Send>),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

pub struct Evaluator {
    jobs: mpsc::Sender<Job>,
    interrupt: Interrupt,
    /// The session as the last evaluation left it, for completion and inspection.
    view: Arc<Mutex<Option<Arc<SessionView>>>>,
    /// Shared with the host, so a signal handler can close the browsers even mid-cell.
    pub services: Arc<Services>,
    /// Where output goes, in order with the scripts': Rust cells print here too.
    printer: async_mpsc::UnboundedSender<Emitted>,
}

impl Evaluator {
    /// Starts the thread. Everything scripts emit while they run (printed lines with their
    /// stream, `display`ed values) arrives on the returned receiver, in order.
    pub fn start(config: Config) -> std::io::Result<(Self, async_mpsc::UnboundedReceiver<Emitted>)> {
        let (print_tx, print_rx) = async_mpsc::unbounded_channel::<Emitted>();
        let printer = print_tx.clone();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let view: Arc<Mutex<Option<Arc<SessionView>>>> = Arc::default();
        let latest = view.clone();
        std::thread::Builder::new().name("webaccel-eval".into()).spawn(move || {
            let displays = print_tx.clone();
            let printer = Arc::new(move |stream: Stream, s: &str| {
                let _ = print_tx.send(Emitted::Text(stream, format!("{s}\n")));
            });
            let mut host = match ScriptHost::new(config, printer) {
                Ok(host) => {
                    *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(host.view()));
                    let _ = ready_tx.send(Ok(host.services().clone()));
                    host
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let interrupt = host.services().interrupt.clone();
            host.set_displayer(Arc::new(move |shown| {
                let _ = displays.send(match shown {
                    Shown::Value(display) => Emitted::Display(display),
                    Shown::Clear { wait } => Emitted::Clear { wait },
                });
            }));
            while let Ok(job) = job_rx.recv() {
                match job {
                    Job::Eval { code, done } => {
                        // An interrupt stops the cell it arrives during, never the next one.
                        interrupt.clear();
                        let outcome = host.eval(&code).map(|value| render(&value));
                        *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(host.view()));
                        let _ = done.send(outcome);
                    }
                    Job::Ask(question) => question(&host),
                    Job::Shutdown { done } => {
                        // Other holders of the services (the signal handler) keep them alive
                        // past this drop, so the browsers are closed explicitly.
                        tracing::debug!("evaluator: closing browsers");
                        host.services().shutdown();
                        drop(host);
                        tracing::debug!("evaluator: closed");
                        let _ = done.send(());
                        return;
                    }
                }
            }
        })?;
        let services =
            ready_rx.recv().map_err(|_| std::io::Error::other("the evaluator thread died while starting"))??;
        let interrupt = services.interrupt.clone();
        Ok((Evaluator { jobs, interrupt, view, services, printer }, print_rx))
    }

    /// The sender of the channel `start` returned the receiver of.
    pub fn printer(&self) -> async_mpsc::UnboundedSender<Emitted> {
        self.printer.clone()
    }

    pub async fn eval(&self, code: String) -> Outcome {
        let (done, rx) = oneshot::channel();
        if self.jobs.send(Job::Eval { code, done }).is_err() {
            return Err(ScriptError {
                kind: "KernelError",
                message: "the evaluator thread has stopped".into(),
                line: None,
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(ScriptError {
                kind: "KernelError",
                message: "the evaluator thread stopped during evaluation".into(),
                line: None,
            })
        })
    }

    /// Answers `question` on the evaluator thread, after the evaluation in progress (if any);
    /// None when the thread has stopped.
    pub async fn ask<T: Send + 'static>(&self, question: impl FnOnce(&ScriptHost) -> T + Send + 'static) -> Option<T> {
        let (done, rx) = oneshot::channel();
        let job = Job::Ask(Box::new(move |host: &ScriptHost| {
            let _ = done.send(question(host));
        }));
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }

    /// The session as the last evaluation left it (answers completion and inspection at once,
    /// even while a cell runs).
    pub fn view(&self) -> Arc<SessionView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone().expect("set before the thread was ready")
    }

    /// Stops the running cell: the script at its next operation, and a native call where it
    /// waits (within a second).
    pub fn interrupt(&self) {
        self.interrupt.raise();
    }

    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.jobs.send(Job::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

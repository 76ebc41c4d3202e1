//! Native onnxruntime on the host's CPU, through the `ort` crate loading the `libonnxruntime.so`
//! that the pinned PyPI `onnxruntime` wheel ships (nothing is downloaded or compiled).
//!
//! It serves two purposes. It is the independent reference that browser outputs are checked
//! against (a browser's fp32-on-wasm run compared with itself proves nothing), and it is the
//! `native` platform, timed the way the page times a run: a session's first run on its own,
//! untimed warm-up runs, then timed runs.
//!
//! Like `browser-runtime`, it is given file paths and tensors and returns outputs and timings;
//! the two runtimes know nothing of each other.

pub mod error;
mod generate;
pub mod library;
pub mod session;
mod values;

pub use error::NativeError;
pub use library::NativeRuntime;
pub use session::{NativeRun, NativeRunOutput, NativeSession};

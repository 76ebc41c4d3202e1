//! Launches and drives real browsers over the DevTools protocol, serves the in-page runtime
//! and onnxruntime-web from a loopback server, and runs ONNX models in the page.
//!
//! This crate knows nothing of DuckDB, IPFS, Rhai or Jupyter: it is given model file paths and
//! input tensors, and returns outputs, in-page timings and measured capabilities.

pub mod assets;
pub mod capabilities;
pub mod error;
pub mod launch;
pub mod pool;
pub mod session;
pub mod tensor;

pub use assets::{default_ort_dir, AssetServer};
pub use capabilities::Capabilities;
pub use error::BrowserError;
pub use launch::{firefox_executable, BrowserKind, LaunchedBrowser, ProfileChoice};
pub use pool::{BrowserKey, BrowserPool, PoolLimits, PooledBrowser};
pub use session::{
    BrowserSession, EchoTimings, InputMetadata, LoadInfo, LoadRequest, MemoryReport, PageSettings, Platform,
    RunOptions, RunOutput, Sequence, Timeouts, INLINE_LIMIT,
};
pub use tensor::{DType, Tensor};

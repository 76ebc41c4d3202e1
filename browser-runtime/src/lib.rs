//! Launches and drives real browsers (the Chromium family over the DevTools protocol, Firefox
//! over WebDriver BiDi), serves the in-page runtime and onnxruntime-web from a loopback server,
//! and runs ONNX models in the page, exchanging tensors with it over a WebSocket data channel.
//!
//! This crate knows nothing of DuckDB, IPFS, Rhai or Jupyter: it is given model file paths and
//! input tensors, and returns outputs, in-page timings and measured capabilities.

pub mod assets;
pub mod bidi;
mod calls;
pub mod capabilities;
pub mod channel;
pub mod error;
pub mod grid;
pub mod launch;
pub mod pool;
pub mod session;
mod tls;

pub use assets::{default_ort_dir, AssetServer};
pub use capabilities::{Capabilities, RemoteNode};
pub use error::BrowserError;
pub use grid::{GridConfig, Slot};
pub use launch::{refused_switch, BrowserKind, ControlProtocol, LaunchedBrowser, ProfileChoice};
pub use pool::{BrowserKey, BrowserPool, BrowserTarget, PoolLimits, PooledBrowser};
pub use session::{
    BrowserSession, LoadInfo, LoadRequest, MemoryReport, OpTime, PageSettings, Platform, RunOptions, RunOutput,
    Timeouts, RUN_LIMIT,
};
pub use webaccel_tensor::generation::agreement as generation_agreement;
pub use webaccel_tensor::{DType, Generation, GenerationSample, InputMetadata, Sampling, Sequence, Tensor, TensorError};

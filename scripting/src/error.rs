use rhai::{EvalAltResult, Position};
use webaccel_browser_runtime::BrowserError;
use webaccel_models::ModelError;
use webaccel_results::ResultsError;

/// Errors of the scripting API. Each becomes a Rhai runtime error whose text says what was
/// wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown option '{key}' for {function}(); valid options: {valid}")]
    UnknownOption { function: &'static str, key: String, valid: String },

    #[error("option '{key}' of {function}() {problem}")]
    BadOption { function: &'static str, key: String, problem: String },

    #[error("unknown platform '{0}'; valid platforms: webgpu, webnn, wasm, native")]
    UnknownPlatform(String),

    #[error("unknown browser '{name}'; valid browsers: {valid}")]
    UnknownBrowser { name: String, valid: String },

    #[error("no platform could run the model (requested {requested}{}): {reasons}", if *fallback { ", with fallback" } else { ", fallback off" })]
    NoPlatform { requested: String, fallback: bool, reasons: String },

    #[error("the input for {model} must be {expected}")]
    BadInput { model: String, expected: String },

    #[error("the model has no output named '{wanted}'; it has {actual:?}")]
    MissingOutput { wanted: String, actual: Vec<String> },

    #[error("{path} hashes to CID {actual}, but the catalog says {expected}; the catalog entry is wrong (its sha256 matched), so report it")]
    CidMismatch { path: std::path::PathBuf, expected: String, actual: String },

    #[error(transparent)]
    Browser(#[from] BrowserError),

    #[error(transparent)]
    Model(#[from] ModelError),

    #[error(transparent)]
    Native(webaccel_native_runtime::NativeError),

    #[error("{0}")]
    NativeUnavailable(String),

    #[error(transparent)]
    Tensor(#[from] webaccel_browser_runtime::TensorError),

    #[error(transparent)]
    Results(#[from] ResultsError),

    #[error(transparent)]
    Ipfs(#[from] webaccel_ipfs::Error),

    #[error("{0} is not in the local IPFS store; fetch it without `offline: true`")]
    NotCached(String),

    /// The user interrupted the call (a kernel interrupt, Ctrl-C).
    #[error("interrupted by the user")]
    Interrupted,
}

impl From<webaccel_native_runtime::NativeError> for ApiError {
    fn from(e: webaccel_native_runtime::NativeError) -> Self {
        match e {
            // A native run stops between runs only when asked to, and only the interrupt asks.
            webaccel_native_runtime::NativeError::Stopped { .. } => ApiError::Interrupted,
            e => ApiError::Native(e),
        }
    }
}

impl From<ApiError> for Box<EvalAltResult> {
    fn from(e: ApiError) -> Self {
        match e {
            // Terminated, not a runtime error: a script's `try` cannot catch an interrupt and
            // carry on.
            ApiError::Interrupted => Box::new(EvalAltResult::ErrorTerminated("interrupted".into(), Position::NONE)),
            e => Box::new(EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE)),
        }
    }
}

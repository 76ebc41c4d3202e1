use std::path::PathBuf;

/// What can go wrong with native onnxruntime; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(
        "native onnxruntime is not installed: no libonnxruntime.so at {searched}. Run the setup command in the README \
         (it installs the pinned onnxruntime wheel into the venv) or set WEBACCEL_ONNXRUNTIME to the library"
    )]
    NotFound { searched: String },

    #[error("could not load native onnxruntime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },

    #[error("native onnxruntime could not create a session for {model}: {reason}")]
    Session { model: PathBuf, reason: String },

    #[error("native onnxruntime failed to run the model: {0}")]
    Run(String),

    #[error("input {name}: {problem}")]
    Input { name: String, problem: String },

    #[error("output {name} is {dtype}, which webaccel does not read back")]
    UnsupportedOutput { name: String, dtype: String },

    #[error(
        "the runs did not fit in the run limit of {limit_s} s: {done} of {asked} timed runs were made in {elapsed_s:.0} s; \
         ask for fewer runs or a shorter warm-up"
    )]
    OverBudget { limit_s: u64, done: u32, asked: u32, elapsed_s: f64 },

    /// The caller's stop check said stop (the user interrupted), between two runs.
    #[error("stopped on request after {done} timed runs")]
    Stopped { done: u32 },

    #[error(transparent)]
    Tensor(#[from] webaccel_tensor::TensorError),
}

impl From<ort::Error> for NativeError {
    fn from(e: ort::Error) -> Self {
        NativeError::Run(e.to_string())
    }
}

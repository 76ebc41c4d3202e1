use std::path::PathBuf;

/// Everything that can go wrong between the host and a browser page. Each variant says what
/// happened and, where the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "no {browser} executable found; searched {searched:?}. Install it (see README) or set {env_var} to its path"
    )]
    NotFound { browser: String, searched: Vec<PathBuf>, env_var: &'static str },

    #[error("could not launch {browser} from {path}: {reason}")]
    Launch { browser: String, path: PathBuf, reason: String },

    #[error(
        "the {browser} browser process exited or its page crashed during {during}; the next call will launch a fresh browser"
    )]
    Crashed { browser: String, during: String },

    #[error("{browser} did not answer within {seconds} s during {during}; this browser is discarded and the next call launches a fresh one")]
    Timeout { browser: String, during: String, seconds: u64 },

    #[error("the page's JavaScript failed during {during}: {message}")]
    Page { during: String, message: String },

    #[error(
        "the page's data channel closed during {during} while the browser lived on; the next call will open a fresh page in a fresh browser"
    )]
    ChannelClosed { during: String },

    #[error("the browser's control protocol (CDP or WebDriver BiDi) failed during {during}: {message}")]
    Protocol { during: String, message: String },

    #[error(
        "all {max_connections} browser connections are in use; raise max_connections or wait for a call to finish"
    )]
    PoolFull { max_connections: usize },

    #[error("the asset server could not start: {0}")]
    AssetServer(String),

    #[error("onnxruntime-web was not found at {0}; run the setup command in the README (it installs npm packages)")]
    OrtMissing(PathBuf),

    #[error("model file {0} does not exist")]
    ModelMissing(PathBuf),

    #[error("the page returned an output the host could not read: {0}")]
    BadOutput(String),

    #[error(transparent)]
    Tensor(#[from] webaccel_tensor::TensorError),

    #[error(
        "the remote browser {browser} (session {session} on the hub {hub}) went away during {during}: {why}; the next \
         call asks the hub for a new session"
    )]
    RemoteGone { browser: String, session: String, hub: String, during: String, why: String },

    /// A Selenium Grid problem: the hub, the slot, or the session; the text names the hub, what
    /// was asked for and what to do.
    #[error("{0}")]
    Grid(String),
}

pub type Result<T, E = BrowserError> = std::result::Result<T, E>;

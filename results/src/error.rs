use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot open the results database {path}: {reason}")]
    Open { path: PathBuf, reason: String },

    #[error("cannot create the directory for the results database {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },

    #[error("{path} was written by a newer webaccel (schema version {found}; this one knows up to {supported}); use a newer webaccel or another WEBACCEL_DB")]
    NewerSchema { path: PathBuf, found: i32, supported: i32 },

    #[error("results database error: {0}")]
    Db(#[from] duckdb::Error),

    #[error("cannot build the Arrow batch for the runs table: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = ResultsError> = std::result::Result<T, E>;

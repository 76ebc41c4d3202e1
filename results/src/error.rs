use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot open the results database {path}: {reason}")]
    Open { path: PathBuf, reason: String },

    /// DuckDB allows one writing process per file; it holds an OS lock while the file is open.
    #[error(
        "the results database {path} is in use by another webaccel process ({holder}); close that kernel or \
         script, open with a timeout to wait for it, or point WEBACCEL_DB at another file"
    )]
    Locked { path: PathBuf, holder: String },

    #[error(
        "the results database {path} stayed in use by another webaccel process ({holder}) for {waited:?}; close \
         that kernel or script, or point WEBACCEL_DB at another file"
    )]
    LockTimeout { path: PathBuf, holder: String, waited: Duration },

    #[error("cannot create the directory for the results database {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },

    #[error("{path} was written by a newer webaccel (schema version {found}; this one knows up to {supported}); use a newer webaccel or another WEBACCEL_DB")]
    NewerSchema { path: PathBuf, found: i32, supported: i32 },

    #[error("results database error: {0}")]
    Db(#[from] duckdb::Error),

    #[error("the query failed: {reason}\n  query: {sql}")]
    Query { sql: String, reason: String },

    #[error(
        "sql() runs read statements only (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN and read-only PRAGMAs such \
         as table_info), so that no query can erase or alter a measurement; this is {kind}. Export rows with \
         .export(path, format) or .to_parquet(path) on a frame\n  query: {sql}"
    )]
    NotRead { sql: String, kind: String },

    #[error("cannot export to {path}: {reason}")]
    Export { path: PathBuf, reason: String },

    #[error("cannot build an Arrow batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("column {column} has type {data_type}, which frames cannot hold; {hint}")]
    UnsupportedType { column: String, data_type: String, hint: String },

    #[error("no column {column:?}; the frame has {available:?}")]
    NoSuchColumn { column: String, available: Vec<String> },

    #[error("column {column:?} holds {found}, but {wanted} is needed here")]
    ColumnType { column: String, found: String, wanted: String },

    #[error("frame error: {0}")]
    Polars(#[from] polars::error::PolarsError),

    #[error("invalid option: {0}")]
    Invalid(String),

    #[error("cannot draw the plot: {0}")]
    Plot(String),

    #[error(
        "no font to draw plot text with (looked for {tried:?}); install fonts-dejavu-core (scripts/setup.sh does) \
         or set WEBACCEL_FONT to a .ttf file"
    )]
    NoFont { tried: Vec<PathBuf> },

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T, E = ResultsError> = std::result::Result<T, E>;

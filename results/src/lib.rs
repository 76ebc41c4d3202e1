//! Results: each run becomes a record, then an Arrow `RecordBatch`, appended to a DuckDB file.
//!
//! This crate knows nothing of browsers; it receives records.

pub mod error;
pub mod record;
pub mod schema;
pub mod store;

pub use error::ResultsError;
pub use record::{median_p90, EnvironmentRecord, RunRecord, RunStatus};
pub use store::ResultStore;

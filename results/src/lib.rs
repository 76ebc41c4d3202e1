//! Results: each run becomes a record, then an Arrow `RecordBatch`, appended to a DuckDB file;
//! queries come back as Arrow and become Polars frames; frames are summarised (`stats`),
//! drawn (`plot`) and exported.
//!
//! This crate knows nothing of browsers; it receives records.

mod database;
pub mod error;
pub mod export;
#[cfg(test)]
mod fixtures;
mod font;
pub mod frame;
mod frame_sql;
mod interchange;
mod lock;
pub mod plot;
pub mod record;
mod render;
pub mod schema;
pub mod stats;
pub mod store;

pub use database::StatementKind;
pub use error::ResultsError;
pub use export::ExportFormat;
pub use frame::Frame;
pub use plot::{Plot, PlotFormat, PlotKind, PlotOptions, PlotSpec};
pub use record::{
    median_p90, AccuracyUpdate, EnvironmentRecord, ExperimentRecord, ExperimentStatus, RunRecord, RunStatus,
};
pub use stats::{Baseline, Bootstrap, SummaryOptions};
pub use store::{QueryResult, ResultStore};

//! The Rhai host: a persistent scope and the API (`detect`, `accelerate`, `compare`, `sql`,
//! `plot`, ...) that orchestrates browser-runtime, models and results. `webaccel run` and the kernel both sit on
//! `ScriptHost`; neither knows what the API does inside.

pub mod accelerate;
pub mod acceleration;
mod cells;
pub mod compare;
pub mod detect;
pub mod detect_report;
pub mod display;
pub mod environment;
pub mod error;
pub mod families;
pub mod frames;
pub mod help;
pub mod host;
pub mod inputs;
pub mod interrupt;
pub mod ipfs;
mod measure;
pub mod options;
pub mod outputs;
pub mod pipeline;
mod placement;
pub mod plan;
pub mod platform;
pub mod pool_settings;
pub mod progress;
mod reference;
mod row;
pub mod services;
mod target;

pub use acceleration::Acceleration;
pub use display::{render, Display};
pub use error::ApiError;
pub use help::Completeness;
pub use host::{Displayer, Printer, ScriptError, ScriptHost, SessionView, Shown, Stream};
pub use interrupt::Interrupt;
pub use progress::{Progress, Tracker};
pub use services::{Config, Services};

//! Models: the catalog of real pretrained models, their files on disk (checked by sha256),
//! and the pre- and post-processing each family needs.
//!
//! Nothing here knows about browsers, Rhai or Jupyter.

pub mod audio;
pub mod catalog;
pub mod detection;
pub mod error;
pub mod files;
pub mod generation;
pub mod selection;
pub mod speech;
pub mod text;
pub mod vision;

pub use catalog::{
    AudioProcessing, Catalog, ChannelOrder, GenerationProcessing, ModelFile, ModelSpec, PackagedFile, PipelineSpec, Pooling, Processing,
    Sidecar, SpeechProcessing, Stage, TextProcessing, VisionProcessing,
};
pub use error::ModelError;
pub use files::ModelsDir;
pub use text::{cosine, mean_pool, Encoded, TextTokenizer};

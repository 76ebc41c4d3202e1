use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model '{name}'; valid models: {valid}")]
    UnknownModel { name: String, valid: String },

    #[error("unknown pipeline '{name}'; valid pipelines: {valid}")]
    UnknownPipeline { name: String, valid: String },

    #[error("model '{model}' has no {precision}-bit file; available precisions: {valid}")]
    UnknownPrecision { model: String, precision: u32, valid: String },

    #[error("model '{model}' has no {asked} {precision}-bit file; its {precision}-bit files compute in: {offered}. Drop `mixed_precision` or flip it")]
    NoMixedVariant { model: String, precision: u32, asked: &'static str, offered: String },

    #[error("model '{model}' has no usable {precision}-bit file: {reason}. Available precisions: {valid}")]
    VariantUnavailable { model: String, precision: u32, reason: String, valid: String },

    #[error("model file {path} is missing; run the setup command in the README (it downloads the models)")]
    FileMissing { path: PathBuf },

    #[error("model file {path} has sha256 {actual}, but the catalog pins {expected}; delete it and run setup again")]
    HashMismatch { path: PathBuf, expected: String, actual: String },

    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("the model catalog is invalid: {0}")]
    Catalog(String),

    #[error("tokenizer {path} could not be loaded: {reason}")]
    Tokenizer { path: PathBuf, reason: String },

    #[error("cannot tokenize the input: {0}")]
    Tokenize(String),

    #[error("the generation settings {path} cannot be read: {reason}; run the setup command (scripts/prepare_models.py writes them)")]
    Settings { path: PathBuf, reason: String },

    #[error("the model's chat template failed: {0}; pass chat: false to tokenize the prompt as given")]
    ChatTemplate(String),

    #[error("this model has no chat template; pass chat: false")]
    NoChatTemplate,

    #[error("the prompt is {tokens} tokens and max_new_tokens {new} more, past the model's context of {context}; shorten the prompt or ask for fewer tokens")]
    TooLong { tokens: usize, new: u32, context: usize },

    #[error("unknown language '{language}' for this multilingual model; valid languages: {valid}")]
    UnknownLanguage { language: String, valid: String },

    #[error("this model is English-only, so language '{language}' cannot be transcribed; drop `language` or use a multilingual Whisper")]
    EnglishOnly { language: String },

    #[error("the speech front end failed: {0}")]
    FrontEnd(String),

    #[error("the input is empty; give a sentence or a non-empty array of sentences")]
    EmptyInput,

    #[error("cannot read the image {path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("cannot read the audio file {path}: {reason} (webaccel reads WAV: PCM integer or float)")]
    Audio { path: PathBuf, reason: String },

    #[error("cannot resample the audio: {0}")]
    Resample(String),

    #[error("the model output has shape {dims:?}, expected [batch, tokens, hidden] matching the input's [{batch}, {tokens}]")]
    OutputShape { dims: Vec<usize>, batch: usize, tokens: usize },
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

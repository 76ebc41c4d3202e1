//! Text generation's pre- and post-processing: the prompt through the model's chat template
//! (Jinja, as its metadata carries it) and its byte-level BPE tokenizer, and generated ids back
//! to text. The settings file (`scripts/llama_gguf.py`'s generation_json) gives the special ids
//! and the KV-cache shape the runtimes need.

use std::path::Path;

use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};

/// What a generator needs besides the graph.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub chat_template: Option<String>,
    pub bos_token_id: i64,
    pub eos_token_id: i64,
    pub add_bos_token: bool,
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub context_length: usize,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| ModelError::Settings { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
    }
}

/// A prompt as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The text that was tokenized: the chat template's rendering, or the prompt as given.
    pub text: String,
    pub ids: Vec<i64>,
}

#[derive(Debug)]
pub struct LmTokenizer {
    tokenizer: Tokenizer,
    pub settings: Settings,
}

impl LmTokenizer {
    pub fn load(tokenizer: &Path, settings: &Path) -> Result<Self> {
        let loaded = Tokenizer::from_file(tokenizer)
            .map_err(|e| ModelError::Tokenizer { path: tokenizer.to_path_buf(), reason: e.to_string() })?;
        Ok(LmTokenizer { tokenizer: loaded, settings: Settings::load(settings)? })
    }

    fn token(&self, id: i64) -> String {
        u32::try_from(id).ok().and_then(|id| self.tokenizer.id_to_token(id)).unwrap_or_default()
    }

    /// The prompt's ids: with `chat`, one user message through the chat template with the
    /// assistant's turn opened; without, the text as given (a BOS first where the model wants one).
    pub fn prompt(&self, text: &str, chat: bool, max_new_tokens: u32) -> Result<Prompt> {
        if text.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        let rendered = if chat { self.chat(text)? } else { text.to_string() };
        let encoding =
            self.tokenizer.encode(rendered.as_str(), false).map_err(|e| ModelError::Tokenize(e.to_string()))?;
        let mut ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
        if !chat && self.settings.add_bos_token && ids.first() != Some(&self.settings.bos_token_id) {
            ids.insert(0, self.settings.bos_token_id);
        }
        if ids.len() + max_new_tokens as usize > self.settings.context_length {
            return Err(ModelError::TooLong {
                tokens: ids.len(),
                new: max_new_tokens,
                context: self.settings.context_length,
            });
        }
        Ok(Prompt { text: rendered, ids })
    }

    fn chat(&self, text: &str) -> Result<String> {
        let template = self.settings.chat_template.as_deref().ok_or(ModelError::NoChatTemplate)?;
        let mut env = minijinja::Environment::new();
        // Hugging Face renders templates with these (and its own raise_exception).
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", template).map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        let messages = vec![minijinja::context! { role => "user", content => text }];
        env.get_template("chat")
            .and_then(|t| {
                t.render(minijinja::context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => self.token(self.settings.bos_token_id),
                    eos_token => self.token(self.settings.eos_token_id),
                })
            })
            .map_err(|e| ModelError::ChatTemplate(e.to_string()))
    }

    /// Generated ids as text, special tokens (the end of turn) left out.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().filter_map(|&i| u32::try_from(i).ok()).collect();
        self.tokenizer.decode(&ids, true).map_err(|e| ModelError::Tokenize(e.to_string()))
    }
}

//! The text-generation family: a prompt in (through the model's chat template unless
//! `chat: false`), one whole generation per timed run in the runtime (the KV cache never leaves
//! it), and the generated text out, with the figures users of LLMs ask for: time to first token,
//! prefill and decode tokens per second, and the time per token.

use std::sync::Arc;

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{Generation, GenerationSample, Sampling, Tensor};
use webaccel_models::generation::LmTokenizer;
use webaccel_models::GenerationProcessing;
use webaccel_results::{median_p90, RunRecord};

use super::{output, Family, Preparing};
use crate::error::ApiError;
use crate::inputs::{ModelInput, Source};
use crate::outputs::Output;
use crate::options::OptionValue;
use crate::services::Services;

/// How to generate (text, or a transcript), from `accelerate`'s options.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// None: the family's default (32 for a language model, half the decoder's positions for
    /// speech).
    pub max_new_tokens: Option<u32>,
    /// None: the model's default (the chat template for instruct models).
    pub chat: Option<bool>,
    /// 0: greedy.
    pub temperature: f64,
    /// 0: all tokens.
    pub top_k: usize,
    pub seed: u32,
    /// The spoken language, for a multilingual speech model.
    pub language: Option<String>,
    /// Whether any of these was given, so a model that does not generate can say it ignores none.
    pub given: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: None,
            chat: None,
            temperature: 0.0,
            top_k: 0,
            seed: 0,
            language: None,
            given: false,
        }
    }
}

/// The options a generation (or a transcription) takes, in `accelerate` and `compare`.
pub(crate) const KEYS: [&str; 6] = ["max_new_tokens", "chat", "temperature", "top_k", "seed", "language"];

/// A language model's `max_new_tokens` unless the call says otherwise.
const DEFAULT_MAX_NEW_TOKENS: u32 = 32;

/// The prompt a `compare` cell of a generation model gets when no input is given.
const DEFAULT_PROMPT: &str = "What is the capital of France?";

impl GenerateOptions {
    /// Reads one of `KEYS`; false for any other key.
    pub(crate) fn set(&mut self, opt: &OptionValue) -> Result<bool, ApiError> {
        match opt.key {
            "max_new_tokens" => self.max_new_tokens = Some(opt.count(1, 4096)?),
            "language" => self.language = Some(opt.text()?),
            "chat" => self.chat = Some(opt.boolean()?),
            "temperature" => self.temperature = opt.number(0.0, 100.0)?,
            "top_k" => self.top_k = opt.count(0, 1_000_000)? as usize,
            "seed" => self.seed = opt.count(0, u32::MAX as i64)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn sampling(&self) -> Option<Sampling> {
        (self.temperature > 0.0).then_some(Sampling { temperature: self.temperature, top_k: self.top_k, seed: self.seed })
    }
}

impl Family for GenerationProcessing {
    fn generates(&self) -> bool {
        true
    }

    fn default_input(&self) -> Option<Dynamic> {
        Some(DEFAULT_PROMPT.into())
    }

    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError> {
        prepare(cx.services, cx.model, self, input, cx.generate)
    }

    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
        match &input.source {
            Source::Prompt { tokenizer, .. } => Ok(Output::Generated(decode(tokenizer, &output(outputs, "tokens")?.to_i64()?)?)),
            _ => Ok(Output::Tensors(outputs.to_vec())),
        }
    }
}

/// The prompt as the runtime takes it.
fn prepare(
    services: &Services,
    model: &str,
    p: &GenerationProcessing,
    input: Dynamic,
    opts: &GenerateOptions,
) -> Result<ModelInput, ApiError> {
    if opts.language.is_some() {
        return Err(ApiError::BadOption {
            function: "accelerate",
            key: "language".into(),
            problem: format!("applies to speech models; {model} generates text from a prompt (drop it)"),
        });
    }
    let max_new_tokens = opts.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
    let text = input.into_string().map_err(|_| ApiError::BadInput {
        model: model.to_string(),
        expected: "a prompt (a string)".into(),
    })?;
    let tokenizer = services.lm_tokenizer(model, p)?;
    let chat = opts.chat.unwrap_or(p.chat);
    let prompt = tokenizer.prompt(&text, chat, max_new_tokens)?;
    let s = &tokenizer.settings;
    let sampling = opts.sampling();
    let choice = match sampling {
        None => "greedy (the highest logit; the lowest id on a tie)".to_string(),
        Some(s) => format!(
            "sampled: temperature {}, top_k {}, seed {} (mulberry32; the same in the page and natively)",
            s.temperature,
            if s.top_k == 0 { "all".to_string() } else { s.top_k.to_string() },
            s.seed
        ),
    };
    let mut details = std::collections::BTreeMap::new();
    details.insert(
        "prompt".into(),
        if chat {
            format!("{} tokens, through the model's chat template (chat: false takes the text as given)", prompt.ids.len())
        } else {
            format!("{} tokens, tokenized as given", prompt.ids.len())
        },
    );
    details.insert("decoding".into(), choice);
    details.insert(
        "stop".into(),
        format!("at the end-of-turn token (id {}) or after {max_new_tokens} new tokens", s.eos_token_id),
    );
    details.insert(
        "timing".into(),
        "one timed run is one whole generation; TTFT is prefill plus the first token's choice, \
         decode tokens/s is (N−1)/(t_last − t_first), all timed in the runtime"
            .into(),
    );
    let generation = Generation {
        prompt: prompt.ids.clone(),
        max_new_tokens,
        stop: vec![s.eos_token_id],
        layers: s.layers,
        kv_heads: s.kv_heads,
        head_dim: s.head_dim,
        sampling,
        suppress: vec![],
        suppress_first: vec![],
        encoder_input: None,
    };
    Ok(ModelInput {
        tensors: vec![],
        items: 1,
        dims: vec![],
        source: Source::Prompt { prompt_tokens: prompt.ids.len(), tokenizer },
        sequence: None,
        generation: Some(generation),
        fetches: vec![],
        details,
    })
}

/// The names of a decoder's KV-cache outputs, which stay in GPU buffers on webgpu.
pub(crate) fn cache_outputs(g: &Generation) -> Vec<String> {
    (0..g.layers).flat_map(|i| ["key", "value"].map(|kind| format!("present.{i}.{kind}"))).collect()
}

/// A generation's result: the text and the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub tokens: Vec<i64>,
}

fn decode(tokenizer: &Arc<LmTokenizer>, tokens: &[i64]) -> Result<Generated, ApiError> {
    Ok(Generated { text: tokenizer.decode(tokens)?, tokens: tokens.to_vec() })
}

/// The figures of a set of timed generations: medians of the per-generation ones, the samples
/// themselves, and per-token percentiles over every token after the first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub ttft_ms: Option<f64>,
    pub prefill_tokens_per_s: Option<f64>,
    pub decode_tokens_per_s: Option<f64>,
    pub per_token_p50_ms: Option<f64>,
    pub per_token_p90_ms: Option<f64>,
    pub ttfts_ms: Vec<f64>,
    pub decode_rates: Vec<f64>,
}

impl GenerationStats {
    pub fn of(samples: &[GenerationSample], prompt_tokens: usize) -> Self {
        let ttfts: Vec<f64> = samples.iter().filter_map(GenerationSample::ttft_ms).collect();
        let rates: Vec<f64> = samples.iter().filter_map(GenerationSample::decode_tokens_per_s).collect();
        let prefill: Vec<f64> = samples.iter().filter_map(|s| s.prefill_tokens_per_s(prompt_tokens)).collect();
        let per_token: Vec<f64> = samples.iter().flat_map(GenerationSample::per_token_ms).collect();
        let (p50, p90) = median_p90(&per_token);
        GenerationStats {
            prompt_tokens,
            generated_tokens: samples.last().map_or(0, |s| s.tokens.len()),
            ttft_ms: median_p90(&ttfts).0,
            prefill_tokens_per_s: median_p90(&prefill).0,
            decode_tokens_per_s: median_p90(&rates).0,
            per_token_p50_ms: p50,
            per_token_p90_ms: p90,
            ttfts_ms: ttfts,
            decode_rates: rates,
        }
    }

    pub fn fill(&self, row: &mut RunRecord) {
        row.prompt_tokens = Some(self.prompt_tokens as i32);
        row.generated_tokens = Some(self.generated_tokens as i32);
        row.ttft_ms = self.ttft_ms;
        row.prefill_tokens_per_s = self.prefill_tokens_per_s;
        row.decode_tokens_per_s = self.decode_tokens_per_s;
        row.per_token_p50_ms = self.per_token_p50_ms;
        row.per_token_p90_ms = self.per_token_p90_ms;
        row.ttfts_ms = Some(self.ttfts_ms.clone());
        row.decode_rates = Some(self.decode_rates.clone());
        // A generation's throughput is its decode rate, not generations per second.
        row.throughput_items_per_s = self.decode_tokens_per_s;
    }

    /// The figures as a script reads them off a result (`r.ttft_ms`, ...); unmeasured ones are ().
    pub fn insert_into(&self, m: &mut Map) {
        let f = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
        m.insert("ttft_ms".into(), f(self.ttft_ms));
        m.insert("prefill_tokens_per_s".into(), f(self.prefill_tokens_per_s));
        m.insert("decode_tokens_per_s".into(), f(self.decode_tokens_per_s));
        let mut per_token = Map::new();
        per_token.insert("p50".into(), f(self.per_token_p50_ms));
        per_token.insert("p90".into(), f(self.per_token_p90_ms));
        m.insert("per_token_ms".into(), per_token.into());
        m.insert("prompt_tokens".into(), Dynamic::from_int(self.prompt_tokens as i64));
        m.insert("generated_tokens".into(), Dynamic::from_int(self.generated_tokens as i64));
    }
}

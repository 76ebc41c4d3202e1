//! The value `accelerate` returns to scripts: what ran, where, its outputs, its timings and how
//! its outputs compare with the reference. A figure this call did not measure is None, and
//! scripts see `()`.

use std::collections::BTreeMap;

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::OpTime;

use crate::families::generation::GenerationStats;
use crate::families::speech::SpeechStats;
use crate::outputs::{Agreement, Output};

#[derive(Debug, Clone)]
pub struct Acceleration {
    pub run_id: String,
    pub model: String,
    pub model_type: String,
    /// None for a user's model, whose precision webaccel does not know.
    pub precision: Option<u32>,
    pub weights: String,
    pub compute: String,
    pub mixed_precision: Option<bool>,
    /// The file that ran: its path in its package, `derived/...`, or the user's path.
    pub file: String,
    pub requested_platform: String,
    pub platform: String,
    pub device: Option<String>,
    /// The browser, or `native` for native onnxruntime.
    pub browser: String,
    pub browser_version: String,
    /// Intra-op threads of a native run.
    pub threads: Option<u32>,
    pub fallback_reason: Option<String>,
    pub selection_reason: String,
    pub output: Output,
    /// Whether every output value is a number (no NaN, no ±Inf).
    pub outputs_finite: bool,
    /// What is not finite, when something is.
    pub non_finite: Option<String>,
    pub accuracy: Option<Agreement>,
    /// What the accuracy was measured against, or why it was not.
    pub accuracy_reference: Option<String>,
    /// Whether the WebGPU adapter is a software one (SwiftShader, lavapipe, a fallback
    /// adapter): such WebGPU figures are CPU figures.
    pub adapter_software: Option<bool>,
    /// Where ORT placed the graph's nodes: in all, and on the requested execution provider.
    pub nodes_total: Option<i64>,
    pub nodes_on_ep: Option<i64>,
    /// The assumptions webaccel made for this input (normalisation, resize, batch, truncation).
    pub details: BTreeMap<String, String>,
    pub timings: Timings,
    pub latency_ms: f64,
    pub p90_ms: f64,
    pub throughput_items_per_s: f64,
    pub memory_bytes: Option<i64>,
    /// Why memory is null when it was asked for.
    pub memory_error: Option<String>,
    /// With `profile_ops`: kernel time per run by operator type, largest first.
    pub ops: Option<Vec<OpTime>>,
    /// For a generation: TTFT, prefill and decode rates, time per token (for a transcription,
    /// over its chunks' decoding).
    pub generation: Option<GenerationStats>,
    /// For a transcription: audio length, encoder time, real-time factor, chunk times.
    pub speech: Option<SpeechStats>,
}

/// What one call timed. A figure this call did not measure is None: a reused session reports
/// no creation, no precompile run and no first run (an earlier call measured those).
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// The page's download of the model file (None for a reused session, and for native).
    pub model_fetch_ms: Option<f64>,
    pub session_create_ms: Option<f64>,
    pub session_reused: bool,
    pub precompile_ms: Option<f64>,
    pub first_run_ms: Option<f64>,
    /// Untimed warm-up runs this call made, and their total time.
    pub warmup_runs: u32,
    pub warmup_ms: f64,
    /// Each timed run, in order.
    pub run_ms: Vec<f64>,
}

/// Each operator type with its share of all kernel time (0 when nothing was timed).
pub fn op_shares(ops: &[OpTime]) -> impl Iterator<Item = (&OpTime, f64)> {
    let total: f64 = ops.iter().map(|o| o.ms).sum();
    ops.iter().map(move |o| (o, if total > 0.0 { o.ms / total } else { 0.0 }))
}

fn float_or_unit(v: Option<f64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from_float)
}

impl Acceleration {
    pub fn output(&self) -> Dynamic {
        self.output.to_dynamic()
    }

    /// `ops` for scripts: `[#{op, ms, share}]`, share being the op's part of all kernel time.
    pub fn ops_array(&self) -> Dynamic {
        let Some(ops) = &self.ops else { return Dynamic::UNIT };
        let rows: rhai::Array = op_shares(ops)
            .map(|(o, share)| {
                let mut m = Map::new();
                m.insert("op".into(), o.op.clone().into());
                m.insert("ms".into(), Dynamic::from_float(o.ms));
                m.insert("share".into(), Dynamic::from_float(share));
                Dynamic::from_map(m)
            })
            .collect();
        rows.into()
    }

    /// `accuracy` for scripts: `#{cosine, max_abs_error, top1_agree, reference}`, each figure
    /// `()` when it was not measured (`reference` then says why).
    pub fn accuracy_map(&self) -> Dynamic {
        let mut m = Map::new();
        let a = self.accuracy.as_ref();
        m.insert("cosine".into(), float_or_unit(a.and_then(|a| a.cosine)));
        m.insert("max_abs_error".into(), float_or_unit(a.and_then(|a| a.max_abs_error)));
        m.insert("top1_agree".into(), float_or_unit(a.and_then(|a| a.top1)));
        if let Some((leading, share)) = a.and_then(|a| a.tokens) {
            m.insert("tokens_leading".into(), Dynamic::from_int(leading as i64));
            m.insert("tokens_share".into(), Dynamic::from_float(share));
        }
        if let Some(wer) = a.and_then(|a| a.wer) {
            m.insert("wer".into(), Dynamic::from_float(wer));
        }
        m.insert("reference".into(), self.accuracy_reference.clone().map_or(Dynamic::UNIT, Dynamic::from));
        Dynamic::from_map(m)
    }

    /// The generated ids, `()` for a model that does not generate.
    pub fn tokens(&self) -> Dynamic {
        self.output.tokens().map_or(Dynamic::UNIT, |t| t.iter().map(|&i| Dynamic::from_int(i)).collect::<rhai::Array>().into())
    }

    /// A generation's figure by name (`ttft_ms`, `decode_tokens_per_s`, ...), `()` otherwise.
    pub fn generation_figure(&self, name: &str) -> Dynamic {
        let Some(g) = &self.generation else { return Dynamic::UNIT };
        let mut m = Map::new();
        g.insert_into(&mut m);
        m.remove(name).unwrap_or(Dynamic::UNIT)
    }

    /// A transcription's figure by name (`encoder_ms`, `real_time_factor`, ...), `()` otherwise.
    pub fn speech_figure(&self, name: &str) -> Dynamic {
        let Some(s) = &self.speech else { return Dynamic::UNIT };
        let mut m = Map::new();
        s.insert_into(&mut m);
        m.remove(name).unwrap_or(Dynamic::UNIT)
    }

    pub fn details_map(&self) -> Dynamic {
        Dynamic::from_map(self.details.iter().map(|(k, v)| (k.as_str().into(), v.clone().into())).collect())
    }

    pub fn runs(&self) -> usize {
        self.timings.run_ms.len()
    }

    pub fn session_create(&self) -> Dynamic {
        float_or_unit(self.timings.session_create_ms)
    }

    pub fn first_run(&self) -> Dynamic {
        float_or_unit(self.timings.first_run_ms)
    }
}

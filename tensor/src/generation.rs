//! Autoregressive generation with a KV-cache decoder (the transformers.js/optimum layout:
//! `input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key|value` in;
//! `logits`, `present.{i}.key|value` out), as both runtimes run it: one timed "run" is one
//! whole generation, and the KV cache stays inside the runtime between steps.
//!
//! The token choice is defined here once, and `web/runtime.js` implements the same steps (a
//! mulberry32 stream, top-k, a softmax in doubles), so that a seeded sampled generation is the
//! same sequence in the page and natively wherever their logits agree.

use serde::{Deserialize, Serialize};

/// What to generate from, and how to choose each token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub prompt: Vec<i64>,
    pub max_new_tokens: u32,
    /// Generation stops after any of these.
    pub stop: Vec<i64>,
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// None: greedy (the highest logit, the lowest id on a tie).
    pub sampling: Option<Sampling>,
    /// Ids never chosen (Whisper's non-speech tokens), and ids not chosen first (a blank, the
    /// end of text): their logits count as −∞.
    pub suppress: Vec<i64>,
    pub suppress_first: Vec<i64>,
    /// For an encoder-decoder model: the encoder runs on each chunk of the input tensor named
    /// here (its first dimension counts chunks), and its outputs are fed to every decoder step
    /// by name. One generation per chunk; one inference is all of them.
    pub encoder_input: Option<String>,
}

impl Generation {
    /// Sets the suppressed ids' logits to −∞ in `logits` (one position's row), before the
    /// `index`-th generated token is chosen.
    pub fn mask_suppressed(&self, logits: &mut [f32], index: usize) {
        let first = if index == 0 { self.suppress_first.as_slice() } else { &[] };
        for &id in self.suppress.iter().chain(first) {
            if let Some(v) = usize::try_from(id).ok().and_then(|i| logits.get_mut(i)) {
                *v = f32::NEG_INFINITY;
            }
        }
    }
}

/// Seeded sampling: the `top_k` highest logits (0: all) at `temperature`, walked in id order
/// against one draw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sampling {
    pub temperature: f64,
    pub top_k: usize,
    pub seed: u32,
}

/// One generation's tokens and in-runtime times, all from its start (ms).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationSample {
    pub tokens: Vec<i64>,
    /// The prompt's forward pass alone.
    pub prefill_ms: f64,
    /// When each generated token was chosen: `token_at_ms[0]` is the time to first token
    /// (prefill plus the first choice).
    pub token_at_ms: Vec<f64>,
    /// For an encoder-decoder model: this chunk's encoder run, before the generation's own
    /// clock starts.
    #[serde(default)]
    pub encoder_ms: Option<f64>,
}

impl GenerationSample {
    pub fn ttft_ms(&self) -> Option<f64> {
        self.token_at_ms.first().copied()
    }

    /// Prompt tokens per second of prefill.
    pub fn prefill_tokens_per_s(&self, prompt_tokens: usize) -> Option<f64> {
        (self.prefill_ms > 0.0).then(|| prompt_tokens as f64 / (self.prefill_ms / 1000.0))
    }

    /// (N−1)/(t_last − t_first): the tokens after the first, over the time they took. None
    /// with fewer than two tokens.
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        let (first, last) = (self.token_at_ms.first()?, self.token_at_ms.last()?);
        let n = self.token_at_ms.len();
        (n >= 2 && last > first).then(|| (n - 1) as f64 / ((last - first) / 1000.0))
    }

    /// The time each token after the first took (ms).
    pub fn per_token_ms(&self) -> Vec<f64> {
        self.token_at_ms.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// mulberry32: a 32-bit state, one u32 per draw; chosen because JavaScript computes it exactly
/// with `Math.imul`.
#[derive(Debug, Clone)]
pub struct Mulberry32(u32);

impl Mulberry32 {
    pub fn new(seed: u32) -> Self {
        Mulberry32(seed)
    }

    /// A draw in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x6D2B_79F5);
        let mut t = self.0;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        f64::from(t ^ (t >> 14)) / 4_294_967_296.0
    }
}

/// The next token from one position's logits.
pub fn choose(logits: &[f32], sampling: Option<&Sampling>, rng: &mut Mulberry32) -> i64 {
    let greedy = || {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best as i64
    };
    let Some(s) = sampling.filter(|s| s.temperature > 0.0) else { return greedy() };
    // The top_k highest logits (ties by id), then walked in id order, as the page walks them.
    let mut order: Vec<usize> = (0..logits.len()).collect();
    if s.top_k > 0 && s.top_k < logits.len() {
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        order.truncate(s.top_k);
        order.sort_unstable();
    }
    let top = order.iter().map(|&i| f64::from(logits[i])).fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = order.iter().map(|&i| ((f64::from(logits[i]) - top) / s.temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut draw = rng.next_f64() * total;
    for (&i, w) in order.iter().zip(&weights) {
        draw -= w;
        if draw < 0.0 {
            return i as i64;
        }
    }
    *order.last().expect("logits are not empty") as i64
}

/// How many leading tokens two generations share, and the share of positions (over the longer)
/// where they are equal: the token agreement of a generation with its reference.
pub fn agreement(got: &[i64], reference: &[i64]) -> (usize, f64) {
    let leading = got.iter().zip(reference).take_while(|(a, b)| a == b).count();
    let longer = got.len().max(reference.len());
    let equal = got.iter().zip(reference).filter(|(a, b)| a == b).count();
    (leading, if longer == 0 { 1.0 } else { equal as f64 / longer as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulberry32_matches_its_javascript_definition() {
        // The first three draws for seed 42, as `web/runtime.js`'s mulberry32 gives them
        // (computed there with Math.imul; checked in tests/test_generation.py too).
        let mut r = Mulberry32::new(42);
        let draws: Vec<f64> = (0..3).map(|_| r.next_f64()).collect();
        assert_eq!(draws, vec![0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    }

    #[test]
    fn greedy_takes_the_highest_and_the_lowest_id_on_a_tie() {
        let mut r = Mulberry32::new(0);
        assert_eq!(choose(&[0.1, 3.0, 3.0, -1.0], None, &mut r), 1);
        let cold = Sampling { temperature: 0.0, top_k: 0, seed: 1 };
        assert_eq!(choose(&[0.1, 3.0, 2.0], Some(&cold), &mut r), 1);
    }

    #[test]
    fn top_1_sampling_is_greedy_and_seeded_sampling_repeats() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let one = Sampling { temperature: 1.0, top_k: 1, seed: 7 };
        let mut r = Mulberry32::new(7);
        assert_eq!(choose(&logits, Some(&one), &mut r), choose(&logits, None, &mut r));
        let s = Sampling { temperature: 0.8, top_k: 5, seed: 7 };
        let run = || {
            let mut r = Mulberry32::new(s.seed);
            (0..20).map(|_| choose(&logits, Some(&s), &mut r)).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.iter().collect::<std::collections::BTreeSet<_>>().len() > 1, "sampling never varied: {first:?}");
    }

    #[test]
    fn rates_follow_their_definitions() {
        let s = GenerationSample { tokens: vec![5, 6, 7], prefill_ms: 50.0, token_at_ms: vec![60.0, 80.0, 100.0], encoder_ms: None };
        assert_eq!(s.ttft_ms(), Some(60.0));
        assert_eq!(s.decode_tokens_per_s(), Some(50.0)); // 2 tokens in 40 ms
        assert_eq!(s.prefill_tokens_per_s(10), Some(200.0));
        assert_eq!(s.per_token_ms(), vec![20.0, 20.0]);
        let one = GenerationSample { tokens: vec![5], prefill_ms: 50.0, token_at_ms: vec![60.0], encoder_ms: None };
        assert_eq!(one.decode_tokens_per_s(), None);
    }

    #[test]
    fn suppressed_ids_are_never_chosen_and_first_ones_only_later() {
        let g = Generation {
            prompt: vec![1],
            max_new_tokens: 4,
            stop: vec![],
            layers: 1,
            kv_heads: 1,
            head_dim: 1,
            sampling: None,
            suppress: vec![2],
            suppress_first: vec![1],
            encoder_input: None,
        };
        let mut r = Mulberry32::new(0);
        let mut first = vec![0.0, 2.0, 3.0, 1.0];
        g.mask_suppressed(&mut first, 0);
        assert_eq!(choose(&first, None, &mut r), 3);
        let mut later = vec![0.0, 2.0, 3.0, 1.0];
        g.mask_suppressed(&mut later, 1);
        assert_eq!(choose(&later, None, &mut r), 1);
    }

    #[test]
    fn agreement_counts_leading_and_shared_positions() {
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 9, 4]), (2, 0.75));
        assert_eq!(agreement(&[1, 2], &[1, 2, 3, 4]), (2, 0.5));
        assert_eq!(agreement(&[], &[]), (0, 1.0));
    }
}

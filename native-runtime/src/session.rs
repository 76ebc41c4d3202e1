//! One native session, run the way the page runs one: the session's first run timed on its
//! own (once per session, so a reused session reports none), then untimed warm-up runs, then
//! timed runs. Only `Session::run` is inside a timed interval, as only `session.run` is in the
//! page's; the outputs of the last run are read back afterwards.

use std::time::{Duration, Instant};

use ort::session::{HasSelectedOutputs, OutputSelector};
use ort::session::{RunOptions, Session};
use ort::value::DynValue;
use webaccel_tensor::{Generation, GenerationSample, InputMetadata, Sequence, Tensor};

use crate::error::NativeError;
use crate::values::{from_value, metadata, to_value};

pub struct NativeSession {
    pub(crate) session: Session,
    /// How long creating the session took (read, optimise, place).
    pub create_ms: f64,
    pub threads: usize,
    pub inputs: Vec<InputMetadata>,
    pub output_names: Vec<String>,
    /// Whether this session has run before: its first run is timed once.
    ran: bool,
    /// The last inference's generation samples (one per chunk for an encoder-decoder model):
    /// a generation run's times are its own, besides run_ms.
    last_samples: Vec<GenerationSample>,
}

/// How one call runs the session.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeRun {
    pub warmup: u32,
    /// ...and warm up for at least this long.
    pub warmup_min: Duration,
    pub runs: u32,
    /// The outputs to compute and return; empty means all of them.
    pub fetches: Vec<String>,
    /// Run step by step over a sequence (one timed run is the whole sequence).
    pub sequence: Option<Sequence>,
    /// Generate from a prompt (one timed run is one whole generation; the inputs are unused).
    pub generation: Option<Generation>,
    /// The whole call must finish within this; a request that cannot is refused once the
    /// warm-up shows how long a run takes, and stopped if it overruns.
    pub limit: Duration,
}

/// What one call measured.
#[derive(Debug, Clone)]
pub struct NativeRunOutput {
    /// The session's first run, when it happened in this call; None on a reused session.
    pub first_run_ms: Option<f64>,
    pub warmup_runs: u32,
    pub warmup_ms: f64,
    pub run_ms: Vec<f64>,
    pub outputs: Vec<Tensor>,
    /// A generation's tokens and times, per timed run (the last one's alone when none was timed).
    pub generation: Option<Vec<GenerationSample>>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl NativeSession {
    pub(crate) fn new(session: Session, create_ms: f64, threads: usize) -> Self {
        let inputs = session.inputs().iter().map(|o| metadata(o.name(), o.dtype())).collect();
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        NativeSession { session, create_ms, threads, inputs, output_names, ran: false, last_samples: Vec::new() }
    }

    /// Runs as `run` asks; `stop` is asked between runs (a run itself is not cut short), and
    /// `true` ends the call with `NativeError::Stopped`.
    pub fn run(
        &mut self,
        inputs: &[Tensor],
        run: &NativeRun,
        stop: &dyn Fn() -> bool,
    ) -> Result<NativeRunOutput, NativeError> {
        self.run_with_encoder(None, inputs, run, stop)
    }

    /// `run` for an encoder-decoder model: this session is the decoder, and `encoder` runs on
    /// each chunk of the generation's `encoder_input` first (inside the timed run).
    pub fn run_with_encoder(
        &mut self,
        mut encoder: Option<&mut NativeSession>,
        inputs: &[Tensor],
        run: &NativeRun,
        stop: &dyn Fn() -> bool,
    ) -> Result<NativeRunOutput, NativeError> {
        let fetches: Vec<String> = if run.fetches.is_empty() { self.output_names.clone() } else { run.fetches.clone() };
        let selector = fetches.iter().fold(OutputSelector::no_default(), |s, name| s.with(name.clone()));
        let options = RunOptions::new()?.with_outputs(selector);
        let feeds: Vec<(String, DynValue)> =
            inputs.iter().map(|t| Ok((t.name.clone(), to_value(t)?))).collect::<Result<_, NativeError>>()?;
        let started = Instant::now();
        let over_budget = |done: u32| NativeError::OverBudget {
            limit_s: run.limit.as_secs(),
            done,
            asked: run.runs,
            elapsed_s: started.elapsed().as_secs_f64(),
        };

        let mut outputs = None;
        let first_run_ms = if self.ran {
            None
        } else {
            let (took, out) = self.infer(encoder.as_deref_mut(), inputs, &feeds, &fetches, &options, run, true)?;
            self.ran = true;
            outputs = out;
            Some(ms(took))
        };
        let warm_start = Instant::now();
        let mut warmup_runs = 0;
        while warmup_runs < run.warmup || warm_start.elapsed() < run.warmup_min {
            self.infer(encoder.as_deref_mut(), inputs, &feeds, &fetches, &options, run, false)?;
            warmup_runs += 1;
            if stop() {
                return Err(NativeError::Stopped { done: 0 });
            }
            if started.elapsed() > run.limit {
                return Err(over_budget(0));
            }
        }
        let warmup_ms = ms(warm_start.elapsed());
        // The warm-up (or the first run) says what a run costs: refuse a request that cannot
        // finish rather than run until the limit.
        let per_run = if warmup_runs > 0 { warmup_ms / warmup_runs as f64 } else { first_run_ms.unwrap_or(0.0) };
        if ms(started.elapsed()) + per_run * run.runs as f64 > ms(run.limit) {
            return Err(over_budget(0));
        }
        let mut run_ms = Vec::with_capacity(run.runs as usize);
        let mut samples = Vec::new();
        for i in 0..run.runs {
            let last = i + 1 == run.runs;
            let (took, out) = self.infer(encoder.as_deref_mut(), inputs, &feeds, &fetches, &options, run, last)?;
            run_ms.push(ms(took));
            samples.append(&mut self.last_samples);
            if last {
                outputs = out;
            }
            if stop() {
                return Err(NativeError::Stopped { done: i + 1 });
            }
            if started.elapsed() > run.limit {
                return Err(over_budget(i + 1));
            }
        }
        if outputs.is_none() {
            // No timed run and the first run was earlier: one more, untimed, for the outputs.
            outputs = self.infer(encoder.as_deref_mut(), inputs, &feeds, &fetches, &options, run, true)?.1;
        }
        if samples.is_empty() {
            samples.append(&mut self.last_samples);
        }
        let generation = run.generation.is_some().then_some(samples);
        Ok(NativeRunOutput { first_run_ms, warmup_runs, warmup_ms, run_ms, outputs: outputs.unwrap_or_default(), generation })
    }

    /// One inference (a whole sequence, for a recurrent model; a whole generation, for a
    /// decoder); the outputs are read back only when `keep` (a sequence's steps are always
    /// collected, as the page collects them).
    #[allow(clippy::too_many_arguments)]
    fn infer(
        &mut self,
        encoder: Option<&mut NativeSession>,
        inputs: &[Tensor],
        feeds: &[(String, DynValue)],
        fetches: &[String],
        options: &RunOptions<HasSelectedOutputs>,
        run: &NativeRun,
        keep: bool,
    ) -> Result<(Duration, Option<Vec<Tensor>>), NativeError> {
        if let Some(generation) = &run.generation {
            let t0 = Instant::now();
            let (samples, tokens) = match (&generation.encoder_input, encoder) {
                (None, _) => {
                    let sample = self.generate(generation, &[])?;
                    let tokens = crate::generate::tokens_tensor(&sample.tokens);
                    (vec![sample], tokens)
                }
                (Some(name), Some(encoder)) => {
                    let features = inputs.iter().find(|t| &t.name == name).ok_or_else(|| NativeError::Input {
                        name: name.clone(),
                        problem: "the encoder's input is not among the inputs".into(),
                    })?;
                    self.transcribe(encoder, generation, features)?
                }
                (Some(_), None) => return Err(NativeError::Run("an encoder-decoder model was run without its encoder".into())),
            };
            let took = t0.elapsed();
            self.last_samples = samples;
            return Ok((took, keep.then(|| vec![tokens])));
        }
        let Some(sequence) = run.sequence.as_ref() else {
            let t0 = Instant::now();
            let out = self
                .session
                .run_with_options(feeds.iter().map(|(n, v)| (n.as_str(), v.view())).collect::<Vec<_>>(), options)?;
            let took = t0.elapsed();
            let kept =
                if keep { Some(fetches.iter().map(|n| output(&out, n)).collect::<Result<Vec<_>, _>>()?) } else { None };
            return Ok((took, kept));
        };
        let t0 = Instant::now();
        let stepped = self.steps(inputs, fetches, sequence)?;
        Ok((t0.elapsed(), keep.then_some(stepped)))
    }

    /// Runs `sequence.over` row by row, feeding each step's `carry` outputs into the next step's
    /// inputs, and stacks each fetched output along a new first dimension.
    fn steps(
        &mut self,
        inputs: &[Tensor],
        fetches: &[String],
        sequence: &Sequence,
    ) -> Result<Vec<Tensor>, NativeError> {
        let over = inputs.iter().find(|t| t.name == sequence.over).ok_or_else(|| NativeError::Input {
            name: sequence.over.clone(),
            problem: "the sequence input is not among the inputs".into(),
        })?;
        let count = over.dims.first().copied().unwrap_or(0);
        let row_bytes = over.data.len() / count.max(1);
        let mut state: Vec<Tensor> = inputs.to_vec();
        let mut collected: Vec<Option<Tensor>> = vec![None; fetches.len()];
        let mut wanted: Vec<String> = fetches.to_vec();
        for carried in sequence.carry.keys() {
            if !wanted.contains(carried) {
                wanted.push(carried.clone());
            }
        }
        let selector = wanted.iter().fold(OutputSelector::no_default(), |s, name| s.with(name.clone()));
        let options = RunOptions::new()?.with_outputs(selector);
        for step in 0..count {
            let mut dims = over.dims.clone();
            dims[0] = 1;
            let row = Tensor {
                name: over.name.clone(),
                dtype: over.dtype,
                dims,
                data: over.data[step * row_bytes..(step + 1) * row_bytes].to_vec(),
            };
            let feeds: Vec<(String, DynValue)> = state
                .iter()
                .map(|t| Ok((t.name.clone(), to_value(if t.name == sequence.over { &row } else { t })?)))
                .collect::<Result<_, NativeError>>()?;
            let out = self
                .session
                .run_with_options(feeds.iter().map(|(n, v)| (n.as_str(), v.view())).collect::<Vec<_>>(), &options)?;
            for (from, to) in &sequence.carry {
                let mut next = output(&out, from)?;
                next.name = to.clone();
                match state.iter_mut().find(|t| &t.name == to) {
                    Some(slot) => *slot = next,
                    None => state.push(next),
                }
            }
            for (slot, name) in collected.iter_mut().zip(fetches) {
                let got = output(&out, name)?;
                match slot {
                    None => {
                        let mut first = got;
                        first.dims.insert(0, 1);
                        *slot = Some(first);
                    }
                    Some(stack) => {
                        stack.dims[0] += 1;
                        stack.data.extend_from_slice(&got.data);
                    }
                }
            }
        }
        Ok(collected.into_iter().flatten().collect())
    }
}

fn output(out: &ort::session::SessionOutputs<'_>, name: &str) -> Result<Tensor, NativeError> {
    let value = out.get(name).ok_or_else(|| NativeError::Run(format!("the model produced no output named {name}")))?;
    from_value(name, value)
}

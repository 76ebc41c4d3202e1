//! `accelerate(model, input, options)`: one model, one input, on a chosen or auto-selected
//! browser, platform and precision, or on native onnxruntime. The outputs and timings come from
//! a real run in this call; every call that gets as far as resolving its model leaves a row,
//! failed or not.
//!
//! The flow: the results database is opened first (a locked file fails the call before anything
//! runs); the model resolves to a file (`target.rs`); each platform of the chain is tried in turn
//! (`placement.rs`, `measure.rs`); the outputs are post-processed and checked for values that
//! are not numbers; the row is committed; and only then does the accuracy reference run
//! (`reference.rs`), its figures written to the row in their own commit, so that a failure or a
//! kill there cannot lose the measurement.

use rhai::{Dynamic, Map};
use webaccel_results::{AccuracyUpdate, RunRecord, RunStatus};

use crate::acceleration::Acceleration;
use crate::error::ApiError;
use crate::families::generation::GenerationStats;
use crate::families::speech::SpeechStats;
use crate::inputs::{self, Source};
use crate::measure::{attempt, Attempt, Measured};
use crate::options::AccelerateOptions;
use crate::outputs::{non_finite, post_process};
use crate::placement::platform_chain;
use crate::reference;
use crate::row::{base_row, measured_row, requested_row};
use crate::services::Services;
use crate::target::resolve;

pub fn accelerate(services: &Services, model: &str, input: Dynamic, options: &Map) -> Result<Acceleration, ApiError> {
    let opts = AccelerateOptions::from_map(options)?;
    let label = cell_label(model, &opts);
    let progress = services.progress();
    if let Some(p) = &progress {
        p.start("accelerate", 1);
    }
    let outcome = accelerate_with(services, model, input, &opts, &Cell { label: label.clone(), ..Cell::default() });
    if let Some(p) = &progress {
        match &outcome {
            Ok(a) => p.cell(&label, Ok(a.latency_ms)),
            Err(e) => p.cell(&label, Err(&e.to_string())),
        }
        p.finish();
    }
    outcome
}

/// Where a row sits in a `compare` grid (empty for a plain `accelerate` call), and how progress
/// reports name it.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub experiment_id: Option<String>,
    pub cell_index: Option<i32>,
    pub label: String,
}

/// A call as progress names it: model, browser, platform, precision.
pub(crate) fn cell_label(model: &str, opts: &AccelerateOptions) -> String {
    let browser = match (&opts.platform, &opts.browser) {
        (Some(crate::platform::RunPlatform::Native), _) => "host".to_string(),
        (_, Some(b)) => b.name(),
        (_, None) => "auto".to_string(),
    };
    format!(
        "{model} {browser} {} {}",
        opts.platform.map_or("auto", |p| p.name()),
        opts.precision.map_or("default".into(), |b| format!("{b}-bit"))
    )
}

/// What a row says before its accuracy is known; it stays so if the process dies before the
/// reference has run.
const ACCURACY_PENDING: &str = "pending: the row was written before the reference ran, which it did not finish";

/// A failed row's status: interrupted by the user, or an error.
fn failed(e: &ApiError) -> RunStatus {
    if matches!(e, ApiError::Interrupted) {
        RunStatus::Interrupted
    } else {
        RunStatus::Error
    }
}

pub fn accelerate_with(
    services: &Services,
    model: &str,
    input: Dynamic,
    opts: &AccelerateOptions,
    cell: &Cell,
) -> Result<Acceleration, ApiError> {
    services.open_store()?;
    let early = resolve(services, model, opts).and_then(|target| {
        let prepared = match &target.processing {
            Some(p) => Some(inputs::prepare(services, &target.name, p, &target.inputs, input.clone(), &opts.generate)?),
            None => None,
        };
        Ok((target, prepared))
    });
    let (target, prepared) = match early {
        Ok(x) => x,
        // A grid cell that fails before reaching a browser (an unavailable precision, say)
        // still gets its row, so the grid shows the reason in that cell.
        Err(e) if cell.experiment_id.is_some() => {
            let row = RunRecord { status: failed(&e), error: Some(e.to_string()), ..requested_row(model, opts, cell) };
            services.record(&[row])?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let requested = opts.platform.map_or("auto", |p| p.name()).to_string();

    let run_id = uuid::Uuid::now_v7().to_string();
    let mut row = base_row(&run_id, &target, opts, cell);
    row.batch_size = prepared.as_ref().map(|p| p.items as i32);
    let mut passed_over: Vec<String> = Vec::new();
    let mut measured = None;
    for platform in platform_chain(opts.platform, opts.fallback) {
        row.platform = platform.name().to_string();
        match attempt(services, &target, platform, opts, prepared.as_ref(), &input, &cell.label) {
            Attempt::Ran(m) => {
                measured = Some(m);
                break;
            }
            Attempt::Unavailable(reason) => passed_over.push(format!("{}: {reason}", platform.name())),
            Attempt::Failed(e, pooled) => {
                row.status = failed(&e);
                row.error = Some(e.to_string());
                row.fallback_reason = (!passed_over.is_empty()).then(|| passed_over.join("; "));
                if let Some(pooled) = pooled {
                    row.browser = pooled.capabilities.browser.clone();
                    row.browser_version = Some(pooled.capabilities.version.clone());
                }
                services.record(&[row])?;
                return Err(e);
            }
        }
    }
    let Some(measured) = measured else {
        let e = ApiError::NoPlatform { requested, fallback: opts.fallback, reasons: passed_over.join("; ") };
        row.status = RunStatus::Error;
        row.error = Some(e.to_string());
        services.record(&[row])?;
        return Err(e);
    };
    row.fallback_reason = (!passed_over.is_empty()).then(|| passed_over.join("; "));
    measured_row(services, &mut row, &measured, opts)?;

    let output = match post_process(measured.processing.as_ref(), &measured.outputs, &measured.input) {
        Ok(o) => o,
        Err(e) => {
            row.status = RunStatus::Error;
            row.error = Some(e.to_string());
            services.record(&[row])?;
            return Err(e);
        }
    };
    let non_finite = non_finite(&measured.outputs);
    row.outputs_finite = Some(non_finite.is_none());
    row.accuracy_reference =
        Some(if opts.accuracy { ACCURACY_PENDING.into() } else { "not measured (accuracy: false)".into() });
    services.record(&[row.clone()])?;

    let accuracy = if opts.accuracy {
        services.phase(&cell.label, "the accuracy reference");
        let accuracy = reference::measure(services, &target, &measured, &output);
        let a = accuracy.agreement.as_ref();
        services.update_accuracy(&AccuracyUpdate {
            run_id: run_id.clone(),
            cosine: a.and_then(|a| a.cosine),
            max_abs_error: a.and_then(|a| a.max_abs_error),
            top1_agree: a.and_then(|a| a.top1),
            tokens_leading: a.and_then(|a| a.tokens).map(|(n, _)| n as i32),
            tokens_share: a.and_then(|a| a.tokens).map(|(_, share)| share),
            wer: a.and_then(|a| a.wer),
            reference: accuracy.reference.clone(),
        })?;
        row.accuracy_reference = Some(accuracy.reference);
        accuracy.agreement
    } else {
        None
    };

    let (latency, p90) = (row.latency_ms, row.p90_ms);
    Ok(Acceleration {
        run_id,
        model: target.name.clone(),
        model_type: measured.model_type.clone(),
        precision: target.precision,
        weights: target.weights.clone(),
        compute: target.compute.clone(),
        mixed_precision: target.mixed,
        file: target.file.label.clone(),
        requested_platform: requested,
        platform: row.platform.clone(),
        device: row.device.clone(),
        browser: row.browser.clone(),
        browser_version: row.browser_version.clone().unwrap_or_default(),
        threads: measured.threads,
        fallback_reason: row.fallback_reason.clone(),
        selection_reason: measured.selection_reason.clone(),
        output,
        outputs_finite: non_finite.is_none(),
        non_finite,
        accuracy,
        accuracy_reference: row.accuracy_reference.clone(),
        adapter_software: row.adapter_software,
        nodes_total: row.nodes_total.map(i64::from),
        nodes_on_ep: row.nodes_on_ep.map(i64::from),
        details: measured.input.details.clone(),
        timings: measured.timings.clone(),
        latency_ms: latency.unwrap_or(f64::NAN),
        p90_ms: p90.unwrap_or(f64::NAN),
        throughput_items_per_s: row.throughput_items_per_s.unwrap_or(f64::NAN),
        memory_bytes: row.memory_bytes,
        memory_error: measured.memory.as_ref().and_then(|m| m.error.clone()),
        ops: measured.op_profile.clone(),
        generation: generation_stats(&measured),
        speech: speech_stats(&measured),
    })
}

/// A generation's figures (a transcription's decoding: each chunk one generation).
pub(crate) fn generation_stats(measured: &Measured) -> Option<GenerationStats> {
    match (&measured.generation, &measured.input.source) {
        (Some(samples), Source::Prompt { prompt_tokens, .. } | Source::Speech { prompt_tokens, .. }) => {
            Some(GenerationStats::of(samples, *prompt_tokens))
        }
        _ => None,
    }
}

/// A transcription's own figures.
pub(crate) fn speech_stats(measured: &Measured) -> Option<SpeechStats> {
    match (&measured.generation, &measured.input.source) {
        (Some(samples), Source::Speech { audio_seconds, chunks, .. }) => {
            Some(SpeechStats::of(samples, *chunks, *audio_seconds, &measured.timings.run_ms))
        }
        _ => None,
    }
}

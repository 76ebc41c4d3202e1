//! The accuracy columns: a row's outputs against the model's reference file (fp32, or the widest
//! it has; a user's own file) run once with the same input, off the measured session.
//!
//! The reference runs on native onnxruntime, independent of every browser. Where native
//! onnxruntime is unavailable it runs on wasm, in its own session of the same browser (never the
//! timed session: a timed session is prepared the same way whether or not a reference ran). A
//! row that is itself the reference run is not compared with itself: its accuracy is null and
//! says so. Outputs that are not all numbers have no accuracy either.

use sha2::{Digest, Sha256};
use webaccel_browser_runtime::{LoadRequest, Platform, PooledBrowser, RunOptions, Tensor};
use webaccel_native_runtime::NativeRun;

use crate::error::ApiError;
use crate::inputs::{self, ModelInput};
use crate::measure::{session_key, Measured};
use crate::outputs::{agreement, non_finite, post_process, Agreement, Output};
use crate::platform::RunPlatform;
use crate::services::Services;
use crate::target::{Reference, Target};

/// The agreement, and what it was measured against (or why it was not).
pub(crate) struct Accuracy {
    pub agreement: Option<Agreement>,
    pub reference: String,
}

impl Accuracy {
    fn none(reference: String) -> Self {
        Accuracy { agreement: None, reference }
    }
}

/// A browser's name and major version, as a reference label shows it: "chromium 156".
fn short_version(pooled: &PooledBrowser) -> String {
    let version = &pooled.capabilities.version;
    let number = version.rsplit('/').next().unwrap_or(version);
    format!("{} {}", pooled.capabilities.browser, number.split('.').next().unwrap_or(number))
}

pub(crate) fn measure(services: &Services, target: &Target, measured: &Measured, output: &Output) -> Accuracy {
    if let Some(why) = non_finite(&measured.outputs) {
        return Accuracy::none(format!("not measured: {why}"));
    }
    let Some(reference) = &target.reference else {
        return Accuracy::none("no reference: webaccel knows no fp32 file for this model".into());
    };
    let same_file = reference.sha256() == target.file.sha256;
    match services.native() {
        Ok(native) => {
            let label = format!("{} on {}", reference.describe(), native.label());
            if measured.platform == RunPlatform::Native && same_file {
                return Accuracy::none(format!(
                    "none: this run is the reference ({label}); a row is not compared with itself"
                ));
            }
            let run = |input: &ModelInput| -> Result<Vec<Tensor>, ApiError> {
                let file = reference.locate(services)?;
                let encoder = reference.locate_encoder(services)?;
                services.with_native_pair(&file, encoder.as_ref(), 1, true, |session, encoder, _| {
                    let mut tensors = input.tensors.clone();
                    inputs::match_float_types(&mut tensors, &session.inputs)?;
                    let once = NativeRun {
                        warmup: 0,
                        warmup_min: std::time::Duration::ZERO,
                        runs: 1,
                        fetches: input.fetches.clone(),
                        sequence: input.sequence.clone(),
                        generation: input.generation.clone(),
                        limit: webaccel_browser_runtime::RUN_LIMIT,
                    };
                    Ok(session.run_with_encoder(encoder, &tensors, &once, &|| services.interrupt.is_raised())?.outputs)
                })
            };
            against(services, reference, "native", measured, output, label, run)
        }
        Err(why) => {
            let Some(pooled) = measured.runner.browser() else {
                return Accuracy::none(format!("no reference: native onnxruntime is unavailable ({why})"));
            };
            let label = format!("{} on wasm, {}", reference.describe(), short_version(pooled));
            if measured.platform == RunPlatform::Browser(Platform::Wasm) && same_file {
                return Accuracy::none(format!(
                    "none: this run is the reference ({label}, used because native onnxruntime is unavailable: \
                     {why}); a row is not compared with itself"
                ));
            }
            let run = |input: &ModelInput| -> Result<Vec<Tensor>, ApiError> {
                let file = reference.locate(services)?;
                // Its own session: the timed sessions never share one with the reference.
                let key = format!("{}:reference", session_key(&file.sha256, Platform::Wasm, None, None, false));
                let load = services
                    .wait_in(pooled, pooled.session.load(&key, &file.path, &LoadRequest::new(Platform::Wasm)))??;
                let encoder = match reference.locate_encoder(services)? {
                    None => None,
                    Some(encoder) => {
                        let key = format!("{}:reference", session_key(&encoder.sha256, Platform::Wasm, None, None, false));
                        services.wait_in(
                            pooled,
                            pooled.session.load(&key, &encoder.path, &LoadRequest::new(Platform::Wasm)),
                        )??;
                        Some(key)
                    }
                };
                let mut tensors = input.tensors.clone();
                inputs::match_float_types(&mut tensors, &load.inputs)?;
                let once = RunOptions {
                    fetches: input.fetches.clone(),
                    sequence: input.sequence.clone(),
                    generation: input.generation.clone(),
                    encoder,
                    ..RunOptions::timed(0, 1)
                };
                Ok(services.wait_in(pooled, pooled.session.run(&key, &tensors, &once))??.outputs)
            };
            against(services, reference, "wasm", measured, output, label, run)
        }
    }
}

/// Runs the reference once for this input (or takes its cached output) and compares.
fn against(
    services: &Services,
    reference: &Reference,
    runtime: &str,
    measured: &Measured,
    output: &Output,
    label: String,
    run: impl Fn(&ModelInput) -> Result<Vec<Tensor>, ApiError>,
) -> Accuracy {
    let mut digest = Sha256::new();
    digest.update(reference.sha256().as_bytes());
    digest.update(runtime.as_bytes());
    for t in &measured.input.tensors {
        digest.update(t.name.as_bytes());
        digest.update(format!("{:?}{:?}", t.dtype, t.dims).as_bytes());
        digest.update(&t.data);
    }
    // A generation's input is its prompt and decoding, not tensors.
    if let Some(g) = &measured.input.generation {
        digest.update(serde_json::to_vec(g).unwrap_or_default());
    }
    let key = hex::encode(digest.finalize());
    let reference_output = match services.reference_output(&key) {
        Some(cached) => cached,
        None => {
            let outputs = match run(&measured.input) {
                Ok(outputs) => outputs,
                Err(e) => return Accuracy::none(format!("{label} failed: {e}")),
            };
            if let Some(why) = non_finite(&outputs) {
                return Accuracy::none(format!("not measured: the reference ({label}) is not finite: {why}"));
            }
            match post_process(measured.processing.as_ref(), &outputs, &measured.input) {
                Ok(out) => {
                    services.keep_reference_output(key, out.clone());
                    out
                }
                Err(e) => return Accuracy::none(format!("{label} failed: {e}")),
            }
        }
    };
    match agreement(output, &reference_output) {
        Some(agreement) => Accuracy { agreement: Some(agreement), reference: label },
        None => Accuracy::none(format!(
            "not measured: the outputs cannot be compared with the reference ({label}): different shapes, or an \
             all-zero output"
        )),
    }
}

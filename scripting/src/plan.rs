//! `model_type(name)` and `plan(model, input, options)`: the decisions `accelerate` would make,
//! exposed without running the model. `plan` resolves the file, prepares the input, checks every
//! candidate browser's measured capabilities for each platform it would try, and says which
//! browser, platform, device, file and reference it would use, each with its reason.

use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::{BrowserError, BrowserKind, Platform};
use webaccel_models::detection;

use crate::error::ApiError;
use crate::inputs;
use crate::measure::refined_type;
use crate::options::AccelerateOptions;
use crate::placement::{pick_browser, platform_chain, platform_status};
use crate::platform::RunPlatform;
use crate::services::Services;
use crate::target::{resolve, ModelPath, Reference, Target};

fn map(pairs: Vec<(&str, Dynamic)>) -> Dynamic {
    Dynamic::from_map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect::<Map>())
}

fn text(s: impl Into<String>) -> Dynamic {
    Dynamic::from(s.into())
}

/// The type webaccel gives `name`, and why: the catalog's, or the name's rules refined by the
/// graph's inputs where the file can be read.
fn type_of(services: &Services, name: &str) -> (String, String) {
    if let Ok(spec) = services.catalog.resolve(name) {
        return (spec.model_type.clone(), format!("the catalog lists {} as {}", spec.name, spec.model_type));
    }
    let by_name = detection::model_type_from_name(name).to_string();
    let path = std::path::Path::new(name);
    if path.is_file() {
        let file = webaccel_models::files::sha256_file(path).map(|sha256| ModelPath {
            path: path.to_path_buf(),
            sha256,
            label: name.to_string(),
            fetch: None,
        });
        if let Ok(graph) = file.map_err(ApiError::from).and_then(|f| services.graph(&f, None)) {
            let stem = path.file_stem().map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
            let refined = refined_type(&stem, &graph.inputs);
            let why = if refined == by_name {
                format!("the name's rules say {by_name}, and the graph's inputs agree")
            } else {
                format!("the name's rules say {by_name}; the graph's inputs make it {refined}")
            };
            return (refined, why);
        }
    }
    let why = format!("the name's rules say {by_name} (no graph was read: give a path to an .onnx file to refine it)");
    (by_name, why)
}

pub fn model_type(services: &Services, name: &str) -> String {
    type_of(services, name).0
}

/// Each browser's verdict on `platform` for this file, as the selection sees it.
fn candidates(services: &Services, target: &Target, platform: Platform, opts: &AccelerateOptions) -> Array {
    let fp16 = target.weights.starts_with("fp16");
    BrowserKind::ALL
        .into_iter()
        .map(|kind| {
            let verdict = match services.runtime.block_on(services.pool.get(&opts.browser_key(kind))) {
                Ok(pooled) => match platform_status(&pooled.capabilities, platform, opts.device.as_deref(), fp16) {
                    Ok(()) => format!("{} {} has {}", kind.name(), pooled.capabilities.version, platform.name()),
                    Err(why) => format!("{} lacks {}: {why}", kind.name(), platform.name()),
                },
                Err(BrowserError::NotFound { env_var, .. }) => {
                    format!("{}: not installed ({env_var} to point at one)", kind.name())
                }
                Err(e) => format!("{} failed to start: {e}", kind.name()),
            };
            map(vec![("browser", text(kind.name())), ("verdict", text(verdict))])
        })
        .collect()
}

fn reference_plan(services: &Services, target: &Target, platform: Option<RunPlatform>) -> String {
    let Some(reference) = &target.reference else {
        return "none: webaccel knows no fp32 file for this model".into();
    };
    let same = reference.sha256() == target.file.sha256;
    let what = match reference {
        Reference::Catalog { .. } => reference.describe(),
        Reference::Own(_) => "the same file".into(),
    };
    match services.native() {
        Ok(native) if same && platform == Some(RunPlatform::Native) => {
            format!(
                "none: this run would be the reference ({what} on {}); a row is not compared with itself",
                native.label()
            )
        }
        Ok(native) => format!("{what} on {}", native.label()),
        Err(why) => format!("{what} on wasm in the same browser (native onnxruntime is unavailable: {why})"),
    }
}

pub fn plan(services: &Services, model: &str, input: Dynamic, options: &Map) -> Result<Map, ApiError> {
    let opts = AccelerateOptions::from_map(options)?;
    let target = resolve(services, model, &opts)?;
    let (model_type, type_reason) = if target.type_given {
        (
            target.model_type.clone(),
            if target.processing.is_some() {
                type_of(services, model).1
            } else {
                "given by the model_type option".into()
            },
        )
    } else {
        type_of(services, &target.file.path.display().to_string())
    };
    let prepared = match &target.processing {
        Some(p) => Some(inputs::prepare(services, &target.name, p, &target.inputs, input, &opts.generate)?),
        None => None,
    };
    let mut steps = Array::new();
    let mut chosen: Option<(RunPlatform, Option<String>, String)> = None;
    for platform in platform_chain(opts.platform, opts.fallback) {
        let (available, browser, reason, browsers) = match platform {
            RunPlatform::Native => match services.native() {
                Ok(native) => (true, None, format!("{} in this process", native.label()), Array::new()),
                Err(why) => (false, None, why, Array::new()),
            },
            RunPlatform::Browser(p) => {
                let browsers = candidates(services, &target, p, &opts);
                match pick_browser(services, &target, p, &opts)? {
                    Ok((pooled, why)) => (true, Some(pooled.capabilities.browser.clone()), why, browsers),
                    Err(why) => (false, None, why, browsers),
                }
            }
        };
        let device = (platform == RunPlatform::Browser(Platform::Webnn))
            .then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
        steps.push(map(vec![
            ("platform", text(platform.name())),
            ("available", available.into()),
            ("browser", browser.clone().map_or(Dynamic::UNIT, text)),
            ("device", device.clone().map_or(Dynamic::UNIT, text)),
            ("reason", text(reason.clone())),
            ("browsers", browsers.into()),
        ]));
        if available && chosen.is_none() {
            chosen = Some((platform, browser, reason));
            break;
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), text(target.name.clone()));
    out.insert("model_type".into(), text(model_type));
    out.insert("model_type_reason".into(), text(type_reason));
    out.insert("file".into(), text(target.file.label.clone()));
    out.insert("variant".into(), text(target.variant.clone()));
    out.insert("precision".into(), target.precision.map_or(Dynamic::UNIT, |p| Dynamic::from_int(p as i64)));
    let file_reason = match (opts.precision, target.precision) {
        (Some(asked), _) => format!("precision {asked} asked: {} weights, {} compute", target.weights, target.compute),
        (None, Some(bits)) => format!("the model's first file ({bits}-bit: {} weights)", target.weights),
        (None, None) => "your file, as given".into(),
    };
    out.insert("file_reason".into(), text(file_reason));
    if let Some(input) = &prepared {
        out.insert("batch".into(), Dynamic::from_int(input.items as i64));
        out.insert(
            "details".into(),
            Dynamic::from_map(input.details.iter().map(|(k, v)| (k.as_str().into(), text(v.clone()))).collect()),
        );
    }
    out.insert("candidates".into(), steps.into());
    match chosen {
        Some((platform, browser, reason)) => {
            out.insert("platform".into(), text(platform.name()));
            out.insert("browser".into(), text(browser.unwrap_or_else(|| "native".into())));
            out.insert("reason".into(), text(reason));
            out.insert("accuracy_reference".into(), text(reference_plan(services, &target, Some(platform))));
        }
        None => {
            out.insert("platform".into(), Dynamic::UNIT);
            out.insert("browser".into(), Dynamic::UNIT);
            out.insert("reason".into(), text("no platform of the chain is available; see candidates"));
            out.insert("accuracy_reference".into(), text(reference_plan(services, &target, None)));
        }
    }
    Ok(out)
}

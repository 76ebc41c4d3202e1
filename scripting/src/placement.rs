//! Which platform and browser a call runs on: the platforms to try in order, whether a
//! browser's measured capabilities include one (and what this file needs of it), and the
//! browser the selection table picks among those that can.

use std::sync::Arc;

use webaccel_browser_runtime::{BrowserError, BrowserTarget, Capabilities, Platform, PooledBrowser};
use webaccel_models::selection::{self, Availability};

use crate::error::ApiError;
use crate::options::AccelerateOptions;
use crate::platform::RunPlatform;
use crate::services::Services;
use crate::target::Target;

/// The platforms to try, in order: the requested one, then (with fallback) the slower ones.
/// Auto starts at the fastest browser platform; `native` is only ever run when asked for (it is
/// the reference the browsers are measured against, not a place to fall back to).
pub(crate) fn platform_chain(requested: Option<RunPlatform>, fallback: bool) -> Vec<RunPlatform> {
    const ORDER: [Platform; 3] = [Platform::Webnn, Platform::Webgpu, Platform::Wasm];
    let start = match requested {
        Some(RunPlatform::Native) => return vec![RunPlatform::Native],
        Some(RunPlatform::Browser(p)) => ORDER.iter().position(|o| *o == p).expect("every platform is in ORDER"),
        None => 0,
    };
    let chain = if fallback { &ORDER[start..] } else { &ORDER[start..=start] };
    chain.iter().copied().map(RunPlatform::Browser).collect()
}

/// Whether measured capabilities include the platform, and what this file needs of it; the
/// browser's own error (or the missing feature) when not.
pub(crate) fn platform_status(
    caps: &Capabilities,
    platform: Platform,
    device: Option<&str>,
    fp16: bool,
) -> Result<(), String> {
    match platform {
        Platform::Wasm => Ok(()),
        // Without shader-f16, ORT-web's WebGPU EP still creates an fp16 session, but its
        // outputs were all zeros here (cosine 0 to fp32): so the feature is a requirement.
        Platform::Webgpu
            if caps.page.webgpu.available && fp16 && !caps.page.webgpu.features.iter().any(|f| f == "shader-f16") =>
        {
            Err(format!(
                "the WebGPU adapter ({}) lacks shader-f16, which this fp16 file needs",
                caps.page.webgpu.adapter.as_ref().map_or_else(String::new, |a| {
                    [&a.vendor, &a.architecture, &a.description]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            ))
        }
        Platform::Webgpu if caps.page.webgpu.available => Ok(()),
        Platform::Webgpu => Err(caps.page.webgpu.error.clone().unwrap_or_else(|| "no WebGPU adapter".into())),
        Platform::Webnn => {
            let device = device.unwrap_or("cpu");
            match caps.page.webnn.get(device) {
                Some(d) if d.available => Ok(()),
                Some(d) => Err(d.error.clone().unwrap_or_else(|| format!("no WebNN {device} context"))),
                None => Err(format!("no WebNN report for device {device}")),
            }
        }
    }
}

/// A browser that can run `platform`, and why it was chosen; Ok(Err(reason)) when none can.
pub(crate) fn pick_browser(
    services: &Services,
    target: &Target,
    platform: Platform,
    opts: &AccelerateOptions,
) -> Result<Result<(Arc<PooledBrowser>, String), String>, ApiError> {
    let fp16 = target.weights.starts_with("fp16");
    let device = opts.device.as_deref();
    if let Some(explicit) = &opts.browser {
        // An explicit browser always wins; failing to start it is an error, not a fallback.
        let pooled = services.wait(services.pool.get(&opts.browser_key(explicit.clone())))??;
        let caps = &pooled.capabilities;
        let name = explicit.name();
        return Ok(match platform_status(caps, platform, device, fp16) {
            Ok(()) => Ok((pooled.clone(), format!("browser {name} given explicitly"))),
            Err(why) => Err(format!("{name} {} lacks {}: {why}", caps.version, platform.name())),
        });
    }
    let mut chosen = None;
    // Grid slots are candidates too, after the local browsers; a hub that does not answer
    // leaves only the local ones.
    let remote: Vec<String> =
        services.wait(services.pool.grid_slots())?.unwrap_or_default().iter().map(|s| s.full_name()).collect();
    let selection = selection::choose(&target.model_type, platform.name(), &remote, |name| {
        let Some(candidate) = BrowserTarget::parse(name) else {
            return Availability::NotInstalled("not a browser webaccel knows".into());
        };
        let Ok(launched) = services.wait(services.pool.get(&opts.browser_key(candidate))) else {
            return Availability::Failed("interrupted".into());
        };
        match launched {
            Ok(pooled) => match platform_status(&pooled.capabilities, platform, device, fp16) {
                Ok(()) => {
                    chosen = Some(pooled);
                    Availability::HasPlatform
                }
                Err(why) => Availability::LacksPlatform(why),
            },
            // Where it was looked for is in `detect()`; the reason says how to point at one.
            Err(BrowserError::NotFound { env_var, .. }) => {
                Availability::NotInstalled(format!("{env_var} to point at one"))
            }
            Err(e) => Availability::Failed(e.to_string()),
        }
    });
    services.interrupt.check()?;
    Ok(match (selection.browser, chosen) {
        (Some(_), Some(pooled)) => Ok((pooled, selection.reason)),
        _ => Err(selection.reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_chain_runs_from_the_requested_platform_down() {
        use Platform::*;
        let chain = |p: Option<Platform>, fallback| -> Vec<Platform> {
            platform_chain(p.map(RunPlatform::Browser), fallback).into_iter().filter_map(RunPlatform::browser).collect()
        };
        assert_eq!(chain(Some(Webnn), true), [Webnn, Webgpu, Wasm]);
        assert_eq!(chain(Some(Webgpu), true), [Webgpu, Wasm]);
        assert_eq!(chain(Some(Wasm), true), [Wasm]);
        assert_eq!(chain(None, true), [Webnn, Webgpu, Wasm]);
        assert_eq!(chain(Some(Webnn), false), [Webnn]);
        assert_eq!(chain(None, false), [Webnn]);
        assert_eq!(platform_chain(Some(RunPlatform::Native), true), [RunPlatform::Native]);
    }
}

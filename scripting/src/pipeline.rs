//! `load_pipeline(name, options)`: load every model of a multi-model pipeline into one page,
//! concurrently (`parallel_loading: true`, the default) or one after another, and report the
//! wall time against each model's own load time. Each call loads fresh sessions and releases
//! them afterwards, so calls measure loads, not cache hits.

use std::sync::atomic::{AtomicU64, Ordering};

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{BrowserKind, BrowserTarget, LoadRequest, Platform};

use crate::error::ApiError;
use crate::options::OptionValue;
use crate::services::Services;

const FUNCTION: &str = "load_pipeline";

static CALLS: AtomicU64 = AtomicU64::new(0);

pub fn load_pipeline(services: &Services, name: &str, options: &Map) -> Result<Map, ApiError> {
    let mut platform = Platform::Wasm;
    let mut browser = BrowserTarget::Local(BrowserKind::Chromium);
    let mut parallel = true;
    for (key, value) in options {
        let opt = OptionValue { function: FUNCTION, key, value };
        match key.as_str() {
            "platform" => platform = opt.browser_platform()?,
            "browser" => browser = opt.browser("")?,
            "parallel_loading" => parallel = opt.boolean()?,
            other => {
                return Err(ApiError::UnknownOption {
                    function: FUNCTION,
                    key: other.to_string(),
                    valid: "platform, browser, parallel_loading".into(),
                })
            }
        }
    }
    let spec = services.catalog.resolve_pipeline(name)?;
    let paths = spec
        .stages
        .iter()
        .map(|s| services.catalog.locate(&services.models, &s.file))
        .collect::<Result<Vec<_>, _>>()?;
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let models: Vec<(String, &std::path::Path, LoadRequest)> = spec
        .stages
        .iter()
        .zip(&paths)
        .map(|(stage, path)| {
            let key = format!("pipeline:{}:{}:{call}", spec.name, stage.name);
            (key, path.as_path(), LoadRequest::new(platform))
        })
        .collect();

    let pooled = services.wait(services.pool.get(&webaccel_browser_runtime::BrowserKey::plain(browser)))??;
    let loaded = services.wait_in(&pooled, pooled.session.load_all(&models, parallel))?;
    for (key, _, _) in &models {
        let _ = services.runtime.block_on(pooled.session.unload(key));
    }
    let (wall_ms, sessions) = loaded?;

    let mut stages = Vec::new();
    for (stage, info) in spec.stages.iter().zip(&sessions) {
        let mut m = Map::new();
        m.insert("name".into(), stage.name.clone().into());
        // Fresh keys per call, so each session was created by this call and has its time.
        m.insert("session_create_ms".into(), info.session_create_ms.map_or(Dynamic::UNIT, Dynamic::from_float));
        stages.push(Dynamic::from(m));
    }
    let mut out = Map::new();
    out.insert("pipeline".into(), spec.name.clone().into());
    out.insert("browser".into(), pooled.capabilities.browser.clone().into());
    out.insert("platform".into(), platform.name().into());
    out.insert("parallel_loading".into(), parallel.into());
    out.insert("wall_ms".into(), Dynamic::from_float(wall_ms));
    out.insert(
        "sum_of_loads_ms".into(),
        Dynamic::from_float(sessions.iter().map(|s| s.session_create_ms.unwrap_or(0.0)).sum()),
    );
    out.insert("stages".into(), stages.into());
    Ok(out)
}

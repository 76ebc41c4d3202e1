//! `detect()`: launch (or reuse) each known browser and report what it can really do. Each
//! detected environment is stored once in the results database; when the database cannot be
//! written (another process holds it), the report says so instead of failing: detecting needs
//! no database.

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{BrowserError, BrowserKey, BrowserKind, BrowserTarget};

use crate::environment::browser_environment;
use crate::error::ApiError;
use crate::row::adapter_software;
use crate::services::Services;

/// A map keyed by browser name: every local browser webaccel knows, then every slot the
/// configured Selenium Grid hubs offer (`grid:<name>`), each with the same measured report. A
/// browser that is absent or failed to start is reported with `available: false` and the
/// reason, never left out; hubs that do not answer are reported under `grid`.
pub fn detect(services: &Services) -> Result<Map, ApiError> {
    let mut report = Map::new();
    let mut targets: Vec<BrowserTarget> = BrowserKind::ALL.into_iter().map(BrowserTarget::Local).collect();
    match services.wait(services.pool.grid_slots())? {
        Ok(slots) => targets.extend(slots.into_iter().map(|s| BrowserTarget::Remote(s.name))),
        Err(e) => {
            let mut map = Map::new();
            map.insert("available".into(), false.into());
            map.insert("error".into(), e.to_string().into());
            report.insert("grid".into(), map.into());
        }
    }
    for target in targets {
        let entry = match services.wait(services.pool.get(&BrowserKey::plain(target.clone())))? {
            Ok(pooled) => {
                let env = browser_environment(&pooled);
                let stored = services.record_environment(&env);
                let mut caps = rhai::serde::to_dynamic(&pooled.capabilities).unwrap_or(Dynamic::UNIT);
                if let Some(mut map) = caps.write_lock::<Map>() {
                    if let Some(mut webgpu) = map.get_mut("webgpu").and_then(|w| w.write_lock::<Map>()) {
                        let software = adapter_software(&pooled);
                        webgpu.insert("software".into(), software.map_or(Dynamic::UNIT, Dynamic::from_bool));
                    }
                    map.insert("installed".into(), true.into());
                    map.insert("available".into(), true.into());
                    map.insert("fingerprint".into(), env.fingerprint.into());
                    map.insert("environment_stored".into(), stored.is_ok().into());
                    if let Err(e) = stored {
                        map.insert("environment_error".into(), format!("environment not stored: {e}").into());
                    }
                }
                caps
            }
            Err(e) => {
                let mut map = Map::new();
                map.insert("available".into(), false.into());
                map.insert("error".into(), e.to_string().into());
                if let BrowserError::NotFound { searched, .. } = &e {
                    map.insert("installed".into(), false.into());
                    let paths = searched.iter().map(|p| p.display().to_string().into()).collect::<Vec<Dynamic>>();
                    map.insert("searched".into(), paths.into());
                } else {
                    map.insert("installed".into(), true.into());
                }
                map.into()
            }
        };
        report.insert(target.name().into(), entry);
    }
    Ok(report)
}

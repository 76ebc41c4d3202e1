//! `configure_browsers(#{max_connections, idle_timeout_s, grid, advertise})` and `browsers()`:
//! the warm-browser pool's limits, the Selenium Grid hubs it takes remote slots from, and what
//! it holds right now.

use std::time::Duration;

use rhai::{Dynamic, Map};

use webaccel_browser_runtime::grid::{parse_advertise, parse_hubs, show_advertise};

use crate::error::ApiError;
use crate::options::OptionValue;
use crate::services::Services;

const FUNCTION: &str = "configure_browsers";

pub fn configure(services: &Services, settings: &Map) -> Result<Map, ApiError> {
    let mut limits = services.pool.limits();
    let mut grid = services.pool.grid();
    for (key, value) in settings {
        let opt = OptionValue { function: FUNCTION, key, value };
        match key.as_str() {
            "max_connections" => limits.max_connections = opt.count(1, 64)? as usize,
            "idle_timeout_s" => limits.idle_timeout = Duration::from_secs_f64(opt.seconds(0.1, 86_400.0)?),
            // One hub URL or several; () for none.
            "grid" => {
                let hubs = if value.is_unit() {
                    vec![]
                } else if value.is_string() {
                    vec![opt.string()?]
                } else {
                    opt.strings("must be a hub URL or an array of them", "hub URLs")?
                };
                grid.hubs = parse_hubs(hubs).map_err(|e| opt.bad(e.to_string()))?;
            }
            "advertise" => {
                grid.advertise = if value.is_unit() {
                    None
                } else {
                    Some(parse_advertise(&opt.string()?).map_err(|e| opt.bad(e.to_string()))?)
                };
            }
            other => {
                return Err(ApiError::UnknownOption {
                    function: FUNCTION,
                    key: other.to_string(),
                    valid: "max_connections, idle_timeout_s, grid, advertise".into(),
                })
            }
        }
    }
    services.pool.set_limits(limits);
    services.pool.set_grid(grid);
    Ok(status(services))
}

/// The pool's limits and the browsers it holds.
pub fn status(services: &Services) -> Map {
    let limits = services.pool.limits();
    let held = services.runtime.block_on(services.pool.held());
    let mut map = Map::new();
    map.insert("max_connections".into(), (limits.max_connections as i64).into());
    map.insert("idle_timeout_s".into(), Dynamic::from_float(limits.idle_timeout.as_secs_f64()));
    map.insert("running".into(), held.into_iter().map(Dynamic::from).collect::<rhai::Array>().into());
    let grid = services.pool.grid();
    map.insert("grid".into(), grid.hubs.into_iter().map(Dynamic::from).collect::<rhai::Array>().into());
    map.insert("advertise".into(), grid.advertise.map_or(Dynamic::UNIT, |addr| show_advertise(addr).into()));
    map
}

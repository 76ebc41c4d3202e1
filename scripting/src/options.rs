//! Typed options for the scripting API. Unknown keys are an error naming the valid ones, so a
//! typo never silently falls back to a default.

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{BrowserKind, Platform};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub struct AccelerateOptions {
    pub platform: Platform,
    pub browser: BrowserKind,
    /// WebNN device type: cpu, gpu or npu.
    pub device: Option<String>,
    pub precision: Option<u32>,
    pub runs: u32,
    pub warmup: u32,
}

impl Default for AccelerateOptions {
    fn default() -> Self {
        AccelerateOptions {
            platform: Platform::Wasm,
            browser: BrowserKind::Chromium,
            device: None,
            precision: None,
            runs: 10,
            warmup: 2,
        }
    }
}

const FUNCTION: &str = "accelerate";
const KEYS: [&str; 6] = ["platform", "browser", "device", "precision", "runs", "warmup"];

impl AccelerateOptions {
    pub fn from_map(map: &Map) -> Result<Self, ApiError> {
        let mut opts = AccelerateOptions::default();
        for (key, value) in map {
            match key.as_str() {
                "platform" => {
                    let name = string(key, value)?;
                    opts.platform = Platform::parse(&name).ok_or(ApiError::UnknownPlatform(name))?;
                }
                "browser" => {
                    let name = string(key, value)?;
                    opts.browser = BrowserKind::parse(&name).ok_or_else(|| ApiError::UnknownBrowser {
                        name,
                        valid: BrowserKind::ALL.map(|k| k.name()).join(", "),
                    })?;
                }
                "device" => {
                    let device = string(key, value)?;
                    if !["cpu", "gpu", "npu"].contains(&device.as_str()) {
                        return Err(bad(key, format!("must be \"cpu\", \"gpu\" or \"npu\", not \"{device}\"")));
                    }
                    opts.device = Some(device);
                }
                "precision" => {
                    let bits = count(key, value, 4, 32)?;
                    if ![4, 8, 16, 32].contains(&bits) {
                        return Err(bad(key, format!("must be 4, 8, 16 or 32, not {bits}")));
                    }
                    opts.precision = Some(bits);
                }
                "runs" => opts.runs = count(key, value, 1, 100_000)?,
                "warmup" => opts.warmup = count(key, value, 0, 100_000)?,
                other => {
                    return Err(ApiError::UnknownOption {
                        function: FUNCTION,
                        key: other.to_string(),
                        valid: KEYS.join(", "),
                    })
                }
            }
        }
        if opts.device.is_some() && opts.platform != Platform::Webnn {
            return Err(bad("device", "applies only to platform \"webnn\"".into()));
        }
        Ok(opts)
    }
}

fn bad(key: &str, problem: String) -> ApiError {
    ApiError::BadOption { function: FUNCTION, key: key.to_string(), problem }
}

fn string(key: &str, value: &Dynamic) -> Result<String, ApiError> {
    value
        .clone()
        .into_string()
        .map_err(|ty| bad(key, format!("must be a string, not {ty}")))
}

fn count(key: &str, value: &Dynamic, min: i64, max: i64) -> Result<u32, ApiError> {
    let n = value.as_int().map_err(|ty| bad(key, format!("must be an integer, not {ty}")))?;
    if n < min || n > max {
        return Err(bad(key, format!("must be between {min} and {max}, not {n}")));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn defaults_and_valid_values() {
        assert_eq!(AccelerateOptions::from_map(&Map::new()).unwrap(), AccelerateOptions::default());
        let o = AccelerateOptions::from_map(&map(&[("platform", "webgpu".into()), ("runs", Dynamic::from(3_i64))])).unwrap();
        assert_eq!((o.platform, o.runs), (Platform::Webgpu, 3));
    }

    #[test]
    fn unknown_key_names_the_valid_ones() {
        let err = AccelerateOptions::from_map(&map(&[("plataform", "wasm".into())])).unwrap_err().to_string();
        assert!(err.contains("'plataform'") && err.contains("platform, browser"), "{err}");
    }

    #[test]
    fn unknown_platform_names_the_valid_ones() {
        let err = AccelerateOptions::from_map(&map(&[("platform", "cuda".into())])).unwrap_err().to_string();
        assert!(err.contains("'cuda'") && err.contains("webgpu, webnn, wasm"), "{err}");
    }

    #[test]
    fn wrong_types_and_ranges_are_explained() {
        let err = AccelerateOptions::from_map(&map(&[("runs", "ten".into())])).unwrap_err().to_string();
        assert!(err.contains("must be an integer"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("runs", Dynamic::from(0_i64))])).unwrap_err().to_string();
        assert!(err.contains("between 1 and"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("precision", Dynamic::from(12_i64))])).unwrap_err().to_string();
        assert!(err.contains("4, 8, 16 or 32"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("device", "gpu".into())])).unwrap_err().to_string();
        assert!(err.contains("webnn"), "{err}");
    }
}

//! Typed options for the scripting API. Unknown keys are an error naming the valid ones, so a
//! typo never silently falls back to a default.

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{
    refused_switch, BrowserKey, BrowserKind, BrowserTarget, Platform, ProfileChoice, RUN_LIMIT,
};

use crate::error::ApiError;
use crate::families::generation::{self, GenerateOptions};
use crate::platform::RunPlatform;

/// The longest warm-up a call may ask for: it must leave time for the timed runs inside the
/// run limit (the page refuses runs that would not fit once it knows what one costs).
pub const MAX_WARMUP_S: f64 = RUN_LIMIT.as_secs_f64() * 2.0 / 3.0;

#[derive(Debug, Clone, PartialEq)]
pub struct AccelerateOptions {
    /// None: choose automatically, starting from the fastest platform (webnn) and falling back.
    pub platform: Option<RunPlatform>,
    /// None: choose by the seed's table, checked against measured capabilities.
    pub browser: Option<BrowserTarget>,
    /// WebNN device type: cpu, gpu or npu.
    pub device: Option<String>,
    pub precision: Option<u32>,
    pub runs: u32,
    pub warmup: u32,
    /// Keep warming up for at least this many seconds. V8 tiers ORT's wasm up to optimized
    /// code in the background over the first seconds of use; timings taken before that settles
    /// were bimodal here (p90/p50 2.0-2.4, settling to 1.1-1.25 after about 4 s on a quiet
    /// machine, later on a busy one).
    pub warmup_s: f64,
    /// Fall back webnn → webgpu → wasm when a platform is unavailable or its session fails.
    pub fallback: bool,
    /// Run the model once before the first timed run, so shader compilation is not in it.
    pub precompile_shaders: bool,
    /// Ask the browser for the page's memory after the runs (it can take seconds).
    pub measure_memory: bool,
    /// Profile the session with ORT's profiler and report kernel time per operator type. The
    /// profiler adds its own cost to every run, so such a row's latencies are not comparable
    /// with unprofiled ones (its `op_profile` column says it was profiled).
    pub profile_ops: bool,
    /// Extra Chromium switches; a different set gets a different warm browser.
    pub flags: Vec<String>,
    /// A profile directory kept across browsers (caches carry over); None: a fresh one.
    pub profile_dir: Option<std::path::PathBuf>,
    /// Some(true): the file whose graph mixes precisions (fp32 around an fp16 body, or int8/int4
    /// MatMuls among fp32 ops); Some(false): one that runs at a single precision throughout.
    /// None: mixed where the model has both.
    pub mixed_precision: Option<bool>,
    /// Compare the outputs with the model's fp32 reference on wasm (one extra untimed run per
    /// distinct input, cached).
    pub accuracy: bool,
    /// For a user's model: its type (vision, text_embedding, ...); detected from its name when
    /// not given.
    pub model_type: Option<String>,
    /// Intra-op threads for platform native (1 when not given, as the page's wasm has one).
    pub threads: Option<u32>,
    /// For a text-generation model: how many tokens, whether through the chat template, and
    /// how each token is chosen.
    pub generate: GenerateOptions,
}

impl Default for AccelerateOptions {
    fn default() -> Self {
        AccelerateOptions {
            platform: None,
            browser: None,
            device: None,
            precision: None,
            runs: 10,
            warmup: 2,
            warmup_s: 5.0,
            fallback: true,
            precompile_shaders: true,
            measure_memory: false,
            profile_ops: false,
            flags: Vec::new(),
            profile_dir: None,
            mixed_precision: None,
            accuracy: true,
            model_type: None,
            threads: None,
            generate: GenerateOptions::default(),
        }
    }
}

const FUNCTION: &str = "accelerate";
pub(crate) const KEYS: [&str; 24] = [
    "platform",
    "browser",
    "device",
    "precision",
    "runs",
    "warmup",
    "warmup_s",
    "fallback",
    "precompile_shaders",
    "measure_memory",
    "profile_ops",
    "flags",
    "profile_dir",
    "mixed_precision",
    "accuracy",
    "model_type",
    "task",
    "threads",
    "max_new_tokens",
    "chat",
    "temperature",
    "top_k",
    "seed",
    "language",
];

/// The model types of the detection rules, and the tasks that map onto them.
const MODEL_TYPES: [&str; 7] =
    ["text_embedding", "text2text", "text_generation", "audio", "vision", "multimodal", "text"];

fn task_model_type(name: &str) -> Option<&'static str> {
    if let Some(t) = MODEL_TYPES.iter().find(|t| t.eq_ignore_ascii_case(name)) {
        return Some(t);
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "image-classification" | "object-detection" | "image-segmentation" => "vision",
        "sentence-embedding" | "feature-extraction" => "text_embedding",
        "voice-activity-detection" | "speech-recognition" | "audio-classification" => "audio",
        "text-generation" => "text_generation",
        _ => return None,
    })
}

impl AccelerateOptions {
    pub fn browser_key(&self, target: impl Into<BrowserTarget>) -> BrowserKey {
        let profile = self.profile_dir.clone().map_or(ProfileChoice::Fresh, ProfileChoice::Kept);
        BrowserKey::new(target, self.flags.clone(), profile)
    }

    pub fn from_map(map: &Map) -> Result<Self, ApiError> {
        let mut opts = AccelerateOptions::default();
        for (key, value) in map {
            let opt = OptionValue { function: FUNCTION, key, value };
            let auto = opt.value.clone().into_string().is_ok_and(|s| s == "auto");
            match key.as_str() {
                "platform" => opts.platform = if auto { None } else { Some(opt.platform()?) },
                "browser" => opts.browser = if auto { None } else { Some(opt.browser(", auto")?) },
                "fallback" => opts.fallback = opt.boolean()?,
                "profile_dir" => {
                    let dir = opt.string()?;
                    if dir.is_empty() {
                        return Err(opt.bad("must name a directory".into()));
                    }
                    if !std::path::Path::new(&dir).is_absolute() {
                        return Err(opt.bad(format!(
                            "must be an absolute path, not \"{dir}\": a relative one would land wherever the kernel \
                             happens to run"
                        )));
                    }
                    opts.profile_dir = Some(dir.into());
                }
                "precompile_shaders" => opts.precompile_shaders = opt.boolean()?,
                "mixed_precision" => opts.mixed_precision = Some(opt.boolean()?),
                "accuracy" => opts.accuracy = opt.boolean()?,
                // `task` names the job (image-classification, ...); both map onto a model type.
                "model_type" | "task" => {
                    let given = opt.string()?;
                    let model_type = task_model_type(&given).ok_or_else(|| {
                        opt.bad(format!("\"{given}\" is not one webaccel knows; use one of {}", MODEL_TYPES.join(", ")))
                    })?;
                    opts.model_type = Some(model_type.to_string());
                }
                "measure_memory" => opts.measure_memory = opt.boolean()?,
                "profile_ops" => opts.profile_ops = opt.boolean()?,
                "flags" => {
                    opts.flags = opt.strings("must be an array of strings like \"--enable-features=X\"", "strings")?;
                    if let Some(f) = opts.flags.iter().find(|f| !f.starts_with("--")) {
                        return Err(opt.bad(format!("holds {f:?}; each flag starts with --")));
                    }
                    if let Some((f, why)) = opts.flags.iter().find_map(|f| refused_switch(f).map(|why| (f, why))) {
                        return Err(opt.bad(format!("holds {f}, which webaccel refuses: {why}")));
                    }
                }
                "device" => {
                    let device = opt.string()?;
                    if !["cpu", "gpu", "npu"].contains(&device.as_str()) {
                        return Err(opt.bad(format!("must be \"cpu\", \"gpu\" or \"npu\", not \"{device}\"")));
                    }
                    opts.device = Some(device);
                }
                "precision" => {
                    let bits = opt.count(4, 32)?;
                    if ![4, 8, 16, 32].contains(&bits) {
                        return Err(opt.bad(format!("must be 4, 8, 16 or 32, not {bits}")));
                    }
                    opts.precision = Some(bits);
                }
                "runs" => opts.runs = opt.count(1, 100_000)?,
                "warmup" => opts.warmup = opt.count(0, 100_000)?,
                "warmup_s" => opts.warmup_s = opt.seconds(0.0, MAX_WARMUP_S)?,
                "threads" => opts.threads = Some(opt.count(1, 256)?),
                k if generation::KEYS.contains(&k) => {
                    opts.generate.set(&opt)?;
                    // A model that does not generate refuses them rather than ignore them.
                    opts.generate.given = true;
                }
                other => {
                    return Err(ApiError::UnknownOption {
                        function: FUNCTION,
                        key: other.to_string(),
                        valid: KEYS.join(", "),
                    })
                }
            }
        }
        opts.check()?;
        Ok(opts)
    }

    /// The checks across options.
    pub fn check(&self) -> Result<(), ApiError> {
        let bad = |key: &str, problem: &str| {
            Err(ApiError::BadOption { function: FUNCTION, key: key.into(), problem: problem.into() })
        };
        if self.device.is_some() && self.platform.is_some_and(|p| p != RunPlatform::Browser(Platform::Webnn)) {
            return bad("device", "applies only to platform \"webnn\"");
        }
        if self.threads.is_some() && self.platform != Some(RunPlatform::Native) {
            return bad(
                "threads",
                "applies only to platform \"native\"; browser pages run wasm with one thread, as set at launch",
            );
        }
        if self.platform == Some(RunPlatform::Native) {
            if self.profile_ops {
                return bad("profile_ops", "profiles ORT in the page, so it applies to browser platforms, not native");
            }
            if self.browser.is_some() {
                return bad("browser", "does not apply to platform \"native\", which runs in this process");
            }
        }
        Ok(())
    }
}

/// One option's value, read with the checks and messages every API function shares.
pub(crate) struct OptionValue<'a> {
    pub function: &'static str,
    pub key: &'a str,
    pub value: &'a Dynamic,
}

impl OptionValue<'_> {
    pub fn bad(&self, problem: String) -> ApiError {
        ApiError::BadOption { function: self.function, key: self.key.to_string(), problem }
    }

    pub fn string(&self) -> Result<String, ApiError> {
        self.value.clone().into_string().map_err(|ty| self.bad(format!("must be a string, not {ty}")))
    }

    /// An array of strings; `not_array` is the problem when it is not an array, `items` names
    /// what it must hold.
    pub fn strings(&self, not_array: &str, items: &str) -> Result<Vec<String>, ApiError> {
        let list: rhai::Array = self.value.clone().try_cast().ok_or_else(|| self.bad(not_array.into()))?;
        list.into_iter()
            .map(|s| s.into_string().map_err(|ty| self.bad(format!("must hold {items}, not {ty}"))))
            .collect()
    }

    pub fn boolean(&self) -> Result<bool, ApiError> {
        self.value.as_bool().map_err(|ty| self.bad(format!("must be true or false, not {ty}")))
    }

    pub fn count(&self, min: i64, max: i64) -> Result<u32, ApiError> {
        let n = self.value.as_int().map_err(|ty| self.bad(format!("must be an integer, not {ty}")))?;
        if n < min || n > max {
            return Err(self.bad(format!("must be between {min} and {max}, not {n}")));
        }
        Ok(n as u32)
    }

    pub fn number(&self, min: f64, max: f64) -> Result<f64, ApiError> {
        self.in_range(min, max, "a number", "")
    }

    pub fn seconds(&self, min: f64, max: f64) -> Result<f64, ApiError> {
        self.in_range(min, max, "a number of seconds", " seconds")
    }

    /// A float or an integer within [min, max]; `what` and `unit` word the error.
    fn in_range(&self, min: f64, max: f64, what: &str, unit: &str) -> Result<f64, ApiError> {
        let x = self
            .value
            .as_float()
            .or_else(|_| self.value.as_int().map(|i| i as f64))
            .map_err(|ty| self.bad(format!("must be {what}, not {ty}")))?;
        if !(min..=max).contains(&x) {
            return Err(self.bad(format!("must be between {min} and {max}{unit}, not {x}")));
        }
        Ok(x)
    }

    pub fn text(&self) -> Result<String, ApiError> {
        self.value.clone().into_string().map_err(|ty| self.bad(format!("must be a string, not {ty}")))
    }

    pub fn platform(&self) -> Result<RunPlatform, ApiError> {
        let name = self.string()?;
        RunPlatform::parse(&name).ok_or(ApiError::UnknownPlatform(name))
    }

    /// A platform inside a browser page (not native).
    pub fn browser_platform(&self) -> Result<Platform, ApiError> {
        match self.platform()? {
            RunPlatform::Browser(p) => Ok(p),
            RunPlatform::Native => Err(self.bad("must be a browser platform (webgpu, webnn or wasm)".into())),
        }
    }

    /// A browser name (a local one, or a Grid slot as `grid:<name>`); `extra_valid` lists any
    /// further names the caller accepts itself.
    pub fn browser(&self, extra_valid: &str) -> Result<BrowserTarget, ApiError> {
        let name = self.string()?;
        BrowserTarget::parse(&name).ok_or_else(|| ApiError::UnknownBrowser {
            name,
            valid: BrowserKind::ALL.map(|k| k.name()).join(", ") + ", grid:<slot>" + extra_valid,
        })
    }
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
        let o = AccelerateOptions::from_map(&map(&[("platform", "webgpu".into()), ("runs", Dynamic::from(3_i64))]))
            .unwrap();
        assert_eq!((o.platform, o.runs), (Some(RunPlatform::Browser(Platform::Webgpu)), 3));
        let o = AccelerateOptions::from_map(&map(&[("fallback", false.into()), ("browser", "headless-shell".into())]))
            .unwrap();
        assert_eq!((o.fallback, o.browser), (false, Some(BrowserTarget::Local(BrowserKind::HeadlessShell))));
        let o = AccelerateOptions::from_map(&map(&[("browser", "grid:lab-rtx".into())])).unwrap();
        assert_eq!(o.browser, Some(BrowserTarget::Remote("lab-rtx".into())));
        let flags: rhai::Array = vec!["--enable-features=X".into()];
        let o = AccelerateOptions::from_map(&map(&[("flags", flags.into())])).unwrap();
        assert_eq!(o.flags, ["--enable-features=X"]);
    }

    #[test]
    fn unknown_key_names_the_valid_ones() {
        let err = AccelerateOptions::from_map(&map(&[("plataform", "wasm".into())])).unwrap_err().to_string();
        assert!(err.contains("'plataform'") && err.contains("platform, browser"), "{err}");
    }

    #[test]
    fn unknown_platform_names_the_valid_ones() {
        let err = AccelerateOptions::from_map(&map(&[("platform", "cuda".into())])).unwrap_err().to_string();
        assert!(err.contains("'cuda'") && err.contains("webgpu, webnn, wasm, native"), "{err}");
    }

    #[test]
    fn wrong_types_and_ranges_are_explained() {
        let err = AccelerateOptions::from_map(&map(&[("runs", "ten".into())])).unwrap_err().to_string();
        assert!(err.contains("must be an integer"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("runs", Dynamic::from(0_i64))])).unwrap_err().to_string();
        assert!(err.contains("between 1 and"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("precision", Dynamic::from(12_i64))])).unwrap_err().to_string();
        assert!(err.contains("4, 8, 16 or 32"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("device", "gpu".into()), ("platform", "wasm".into())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("webnn"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("fallback", "no".into())])).unwrap_err().to_string();
        assert!(err.contains("true or false"), "{err}");
        let flags: rhai::Array = vec!["enable-unsafe-webgpu".into()];
        let err = AccelerateOptions::from_map(&map(&[("flags", flags.into())])).unwrap_err().to_string();
        assert!(err.contains("starts with --"), "{err}");
    }

    #[test]
    fn generation_options_are_read_and_checked() {
        let o = AccelerateOptions::from_map(&map(&[
            ("max_new_tokens", Dynamic::from(8_i64)),
            ("temperature", Dynamic::from(0.7_f64)),
            ("top_k", Dynamic::from(40_i64)),
            ("seed", Dynamic::from(3_i64)),
            ("chat", false.into()),
        ]))
        .unwrap();
        assert!(o.generate.given && o.generate.chat == Some(false) && o.generate.max_new_tokens == Some(8));
        let s = o.generate.sampling().unwrap();
        assert_eq!((s.temperature, s.top_k, s.seed), (0.7, 40, 3));
        assert!(AccelerateOptions::default().generate.sampling().is_none(), "greedy unless a temperature is given");
        let err = AccelerateOptions::from_map(&map(&[("max_new_tokens", Dynamic::from(0_i64))])).unwrap_err().to_string();
        assert!(err.contains("max_new_tokens") && err.contains("between 1 and 4096"), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("temperature", "hot".into())])).unwrap_err().to_string();
        assert!(err.contains("must be a number, not"), "{err}");
    }

    #[test]
    fn options_that_could_hurt_are_refused_with_the_reason() {
        let err = AccelerateOptions::from_map(&map(&[("profile_dir", "profile".into())])).unwrap_err().to_string();
        assert!(err.contains("absolute path") && err.contains("\"profile\""), "{err}");
        for (flag, why) in [
            ("--renderer-cmd-prefix=xterm -e gdb --args", "launch another program"),
            ("--gpu-launcher=/bin/sh", "launch another program"),
            ("--utility-cmd-prefix=strace", "launch another program"),
            ("--browser-subprocess-path=/tmp/x", "launch another program"),
            ("--remote-debugging-port=9222", "control connection"),
            ("--remote-debugging-pipe", "control connection"),
            ("--user-data-dir=/tmp/p", "profile_dir"),
            ("--pref=remote.active-protocols=1", "remote agent"),
        ] {
            let flags: rhai::Array = vec![flag.into()];
            let err = AccelerateOptions::from_map(&map(&[("flags", flags.into())])).unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains(why), "{flag}: {err}");
        }
        let fine: rhai::Array = vec!["--enable-features=Vulkan".into(), "--pref=dom.webgpu.enabled=false".into()];
        AccelerateOptions::from_map(&map(&[("flags", fine.into())])).unwrap();
        let err = AccelerateOptions::from_map(&map(&[("warmup_s", Dynamic::from_float(3000.0))])).unwrap_err();
        assert!(err.to_string().contains(&format!("between 0 and {MAX_WARMUP_S}")), "{err}");
        let err = AccelerateOptions::from_map(&map(&[("threads", Dynamic::from(2_i64)), ("platform", "wasm".into())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only to platform \"native\""), "{err}");
        let o = AccelerateOptions::from_map(&map(&[("threads", Dynamic::from(2_i64)), ("platform", "native".into())]))
            .unwrap();
        assert_eq!((o.platform, o.threads), (Some(RunPlatform::Native), Some(2)));
    }
}

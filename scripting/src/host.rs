//! The Rhai host. One engine and one scope live for the whole session: variables and functions
//! defined by one evaluation are there for the next, as in a notebook.

use std::any::TypeId;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope, AST};

use crate::accelerate::accelerate;
use crate::acceleration::Acceleration;
use crate::detect::detect;
use crate::display::{acceleration_text, render, Display};
use crate::help::{self, Completeness};
use crate::services::{Config, Services};

/// Which stream a line of script output belongs to: `print` writes to stdout, `debug` to
/// stderr (as a notebook shows them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where `print` and `debug` output goes: the process's own streams for `webaccel run`, stream
/// messages in the kernel.
pub type Printer = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// Where `display(value)` and `clear_output()` send what they show mid-script: `display_data`
/// and `clear_output` in the kernel. Without one, a display's plain text is printed and a clear
/// does nothing.
pub type Displayer = Arc<dyn Fn(Shown) + Send + Sync>;

/// What a script shows mid-cell besides printed text.
pub enum Shown {
    /// A value rendered as it would be as a cell's result.
    Value(Display),
    /// Clear the cell's output; with `wait`, only when the next output arrives (no flicker when
    /// a loop redraws a table in place).
    Clear { wait: bool },
}

/// A failed evaluation, ready to show to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    /// "ParseError" or "RuntimeError".
    pub kind: &'static str,
    pub message: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

pub struct ScriptHost {
    engine: Engine,
    displayer: Arc<Mutex<Option<Displayer>>>,
    scope: Scope<'static>,
    /// Every function defined so far; statements are cleared after each evaluation.
    ast: AST,
    services: Arc<Services>,
    /// What completion offers after a dot, read from the engine once its API is registered.
    members: Arc<Vec<String>>,
}

/// What completion and inspection read of a session (its variables, its functions, and the
/// members offered after a dot), as an evaluation left it. The kernel keeps the latest, so an
/// editor's questions are answered while a cell runs, from the scope the last cell left.
#[derive(Clone)]
pub struct SessionView {
    scope: Scope<'static>,
    functions: AST,
    members: Arc<Vec<String>>,
}

impl SessionView {
    /// Completions for the name typed before `cursor`. Positions are in characters, as
    /// Jupyter counts them: the replaced range's start and end, and the matches.
    pub fn complete(&self, code: &str, cursor: usize) -> (usize, usize, Vec<String>) {
        let (start, end, matches) =
            help::complete(&self.members, &self.scope, &self.functions, code, byte_offset(code, cursor));
        (code[..start].chars().count(), code[..end].chars().count(), matches)
    }

    /// A variable's value as JSON, for a Rust cell (`webaccel_cell::var`): its serde form, or
    /// for a value that has none (a frame, an acceleration) its text as a JSON string.
    pub fn variable_json(&self, name: &str) -> Option<String> {
        let value = self.scope.get_value::<Dynamic>(name)?;
        let json = rhai::serde::from_dynamic::<serde_json::Value>(&value).unwrap_or_else(|_| {
            serde_json::Value::String(render(&value).map_or_else(|| value.to_string(), |shown| shown.plain))
        });
        Some(json.to_string())
    }

    /// Help for the name at `cursor` (in characters).
    pub fn inspect(&self, code: &str, cursor: usize) -> Option<String> {
        help::inspect(&self.scope, &self.functions, code, byte_offset(code, cursor))
    }
}

fn line_of(pos: Position) -> Option<usize> {
    pos.line()
}

impl ScriptHost {
    pub fn new(config: Config, printer: Printer) -> std::io::Result<Self> {
        let services = Services::new(config)?;
        let mut engine = Engine::new();
        // Deep expressions are a script bug, not an experiment; keep the limits generous but finite.
        engine.set_max_expr_depths(256, 256);
        let out = printer.clone();
        // Scripts stop at their next operation once the user interrupts; the native calls
        // race the same interrupt inside their waits (`interrupt.rs`).
        let interrupt = services.interrupt.clone();
        engine.on_progress(move |_| interrupt.is_raised().then(|| Dynamic::from("interrupted")));
        engine.on_print(move |s| out(Stream::Stdout, s));
        let out = printer.clone();
        engine.on_debug(move |s, _src, pos| out(Stream::Stderr, &format!("[debug {pos}] {s}")));
        register_api(&mut engine, services.clone());
        let displayer: Arc<Mutex<Option<Displayer>>> = Arc::default();
        let shown = displayer.clone();
        // Shows a value now, as the last expression of a cell would be shown at its end: a
        // loop can show a table or a plot per turn.
        engine.register_fn("display", move |value: Dynamic| {
            let Some(rendered) = render(&value) else { return };
            match shown.lock().expect("displayer poisoned").as_ref() {
                Some(show) => show(Shown::Value(rendered)),
                None => printer(Stream::Stdout, &rendered.plain),
            }
        });
        let shown = displayer.clone();
        let clear = move |wait: bool| {
            if let Some(show) = shown.lock().expect("displayer poisoned").as_ref() {
                show(Shown::Clear { wait });
            }
        };
        let clear_now = clear.clone();
        engine.register_fn("clear_output", move || clear_now(false));
        engine.register_fn("clear_output", clear);
        let members = Arc::new(help::members(
            &engine,
            &[
                TypeId::of::<Acceleration>(),
                TypeId::of::<crate::frames::FrameValue>(),
                TypeId::of::<webaccel_results::Plot>(),
            ],
        ));
        Ok(ScriptHost { engine, displayer, scope: Scope::new(), ast: AST::empty(), services, members })
    }

    /// Sends what `display(value)` shows to `displayer` instead of printing its text.
    pub fn set_displayer(&mut self, displayer: Displayer) {
        *self.displayer.lock().expect("displayer poisoned") = Some(displayer);
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Whether `code` is a whole cell, needs more lines, or cannot be fixed by more.
    pub fn completeness(&self, code: &str) -> Completeness {
        help::completeness(&self.engine, &self.scope, code)
    }

    /// The session as completion and inspection read it, now (a copy of the scope).
    pub fn view(&self) -> SessionView {
        SessionView {
            scope: self.scope.clone(),
            functions: self.ast.clone_functions_only(),
            members: self.members.clone(),
        }
    }

    /// Evaluates one cell or script and returns its value (unit when it has none).
    pub fn eval(&mut self, code: &str) -> Result<Dynamic, ScriptError> {
        let ast = self.engine.compile_with_scope(&self.scope, code).map_err(|e| ScriptError {
            kind: "ParseError",
            message: e.0.to_string(),
            line: line_of(e.1),
        })?;
        self.ast += ast;
        // A panic anywhere below (a bug, never expected) becomes this cell's error: the
        // session, its scope and the browsers live on for the next cell.
        let (engine, scope, ast) = (&self.engine, &mut self.scope, &self.ast);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.eval_ast_with_scope::<Dynamic>(scope, ast)
        }));
        self.ast.clear_statements();
        match result {
            Ok(result) => result.map_err(|e| ScriptError {
                kind: if matches!(e.unwrap_inner(), EvalAltResult::ErrorTerminated(..)) {
                    "Interrupted"
                } else {
                    "RuntimeError"
                },
                line: line_of(e.position()),
                message: runtime_message(&e),
            }),
            Err(panic) => Err(ScriptError {
                kind: "InternalError",
                line: None,
                message: format!(
                    "webaccel hit a bug and stopped this cell: {}. The session goes on; please report it",
                    panic_text(&panic)
                ),
            }),
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The byte offset of the `chars`-th character (the end for a position past it).
fn byte_offset(code: &str, chars: usize) -> usize {
    code.char_indices().nth(chars).map_or(code.len(), |(i, _)| i)
}

fn runtime_message(e: &EvalAltResult) -> String {
    match e {
        // Our own API errors carry a complete sentence; Rhai's wrapper would only repeat it.
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => runtime_message(inner),
        EvalAltResult::ErrorTerminated(..) => "interrupted by the user".to_string(),
        other => other.to_string(),
    }
}

fn register_api(engine: &mut Engine, services: Arc<Services>) {
    let s = services.clone();
    engine.register_fn("detect", move || -> Result<Map, Box<EvalAltResult>> { Ok(detect(&s)?) });

    let s = services.clone();
    engine.register_fn(
        "accelerate",
        move |model: &str, input: Dynamic, options: Map| -> Result<Acceleration, Box<EvalAltResult>> {
            Ok(accelerate(&s, model, input, &options)?)
        },
    );
    let s = services.clone();
    engine.register_fn("accelerate", move |model: &str, input: Dynamic| -> Result<Acceleration, Box<EvalAltResult>> {
        Ok(accelerate(&s, model, input, &Map::new())?)
    });

    let s = services.clone();
    engine.register_fn("model_type", move |name: &str| crate::plan::model_type(&s, name));
    let s = services.clone();
    engine.register_fn("plan", move |model: &str, input: Dynamic, options: Map| -> Result<Map, Box<EvalAltResult>> {
        Ok(crate::plan::plan(&s, model, input, &options)?)
    });
    let s = services.clone();
    engine.register_fn("plan", move |model: &str, input: Dynamic| -> Result<Map, Box<EvalAltResult>> {
        Ok(crate::plan::plan(&s, model, input, &Map::new())?)
    });

    let s = services.clone();
    engine.register_fn("load_pipeline", move |name: &str, options: Map| -> Result<Map, Box<EvalAltResult>> {
        Ok(crate::pipeline::load_pipeline(&s, name, &options)?)
    });
    let s = services.clone();
    engine.register_fn("configure_browsers", move |settings: Map| -> Result<Map, Box<EvalAltResult>> {
        Ok(crate::pool_settings::configure(&s, &settings)?)
    });
    let s = services.clone();
    engine.register_fn("browsers", move || crate::pool_settings::status(&s));
    crate::frames::register(engine, services.clone());

    engine.register_static_module("ipfs", crate::ipfs::module(services.clone()).into());

    // Rhai gives maps `to_json` but not arrays; results are often arrays of maps.
    engine.register_fn("to_json", |a: &mut rhai::Array| -> Result<String, Box<EvalAltResult>> {
        serde_json::to_string(a).map_err(|e| format!("cannot write the array as JSON: {e}").into())
    });
    engine.register_fn("cosine", |a: rhai::Array, b: rhai::Array| -> Result<f64, Box<EvalAltResult>> {
        let to_vec = |v: rhai::Array| -> Result<Vec<f32>, Box<EvalAltResult>> {
            v.into_iter()
                .map(|x| x.as_float().map(|f| f as f32).or_else(|_| x.as_int().map(|i| i as f32)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|ty| format!("cosine() takes two arrays of numbers; found a {ty}").into())
        };
        let (a, b) = (to_vec(a)?, to_vec(b)?);
        if a.len() != b.len() || a.is_empty() {
            return Err(format!(
                "cosine() needs two non-empty arrays of the same length, not {} and {}",
                a.len(),
                b.len()
            )
            .into());
        }
        Ok(webaccel_models::cosine(&a, &b) as f64)
    });

    engine
        .register_type_with_name::<Acceleration>("Acceleration")
        .register_get("output", |r: &mut Acceleration| r.output())
        .register_get("tokens", |r: &mut Acceleration| r.tokens())
        .register_get("ttft_ms", |r: &mut Acceleration| r.generation_figure("ttft_ms"))
        .register_get("prefill_tokens_per_s", |r: &mut Acceleration| r.generation_figure("prefill_tokens_per_s"))
        .register_get("decode_tokens_per_s", |r: &mut Acceleration| r.generation_figure("decode_tokens_per_s"))
        .register_get("per_token_ms", |r: &mut Acceleration| r.generation_figure("per_token_ms"))
        .register_get("audio_seconds", |r: &mut Acceleration| r.speech_figure("audio_seconds"))
        .register_get("encoder_ms", |r: &mut Acceleration| r.speech_figure("encoder_ms"))
        .register_get("real_time_factor", |r: &mut Acceleration| r.speech_figure("real_time_factor"))
        .register_get("chunk_ms", |r: &mut Acceleration| r.speech_figure("chunk_ms"))
        .register_get("run_id", |r: &mut Acceleration| r.run_id.clone())
        .register_get("model", |r: &mut Acceleration| r.model.clone())
        .register_get("model_type", |r: &mut Acceleration| r.model_type.clone())
        .register_get("precision", |r: &mut Acceleration| {
            r.precision.map_or(Dynamic::UNIT, |p| Dynamic::from_int(p as i64))
        })
        .register_get("mixed_precision", |r: &mut Acceleration| {
            r.mixed_precision.map_or(Dynamic::UNIT, Dynamic::from_bool)
        })
        .register_get("file", |r: &mut Acceleration| r.file.clone())
        .register_get("accuracy", |r: &mut Acceleration| r.accuracy_map())
        .register_get("weights", |r: &mut Acceleration| r.weights.clone())
        .register_get("compute", |r: &mut Acceleration| r.compute.clone())
        .register_get("platform", |r: &mut Acceleration| r.platform.clone())
        .register_get("requested_platform", |r: &mut Acceleration| r.requested_platform.clone())
        .register_get("device", |r: &mut Acceleration| r.device.clone().map_or(Dynamic::UNIT, Dynamic::from))
        .register_get("fallback_reason", |r: &mut Acceleration| {
            r.fallback_reason.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("selection_reason", |r: &mut Acceleration| r.selection_reason.clone())
        .register_get("precompile_ms", |r: &mut Acceleration| {
            r.timings.precompile_ms.map_or(Dynamic::UNIT, Dynamic::from_float)
        })
        .register_get("outputs_finite", |r: &mut Acceleration| r.outputs_finite)
        .register_get("adapter_software", |r: &mut Acceleration| {
            r.adapter_software.map_or(Dynamic::UNIT, Dynamic::from_bool)
        })
        .register_get("nodes_total", |r: &mut Acceleration| r.nodes_total.map_or(Dynamic::UNIT, Dynamic::from_int))
        .register_get("nodes_on_ep", |r: &mut Acceleration| r.nodes_on_ep.map_or(Dynamic::UNIT, Dynamic::from_int))
        .register_get("details", |r: &mut Acceleration| r.details_map())
        .register_get("threads", |r: &mut Acceleration| {
            r.threads.map_or(Dynamic::UNIT, |t| Dynamic::from_int(t as i64))
        })
        .register_get("warmup_runs", |r: &mut Acceleration| r.timings.warmup_runs as i64)
        .register_get("warmup_ms", |r: &mut Acceleration| r.timings.warmup_ms)
        .register_get("memory_bytes", |r: &mut Acceleration| r.memory_bytes.map_or(Dynamic::UNIT, Dynamic::from_int))
        .register_get("memory_error", |r: &mut Acceleration| {
            r.memory_error.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("browser", |r: &mut Acceleration| r.browser.clone())
        .register_get("browser_version", |r: &mut Acceleration| r.browser_version.clone())
        .register_get("session_create_ms", |r: &mut Acceleration| r.session_create())
        .register_get("model_fetch_ms", |r: &mut Acceleration| {
            r.timings.model_fetch_ms.map_or(Dynamic::UNIT, Dynamic::from_float)
        })
        .register_get("session_reused", |r: &mut Acceleration| r.timings.session_reused)
        .register_get("first_run_ms", |r: &mut Acceleration| r.first_run())
        .register_get("latency_ms", |r: &mut Acceleration| r.latency_ms)
        .register_get("ops", |r: &mut Acceleration| r.ops_array())
        .register_get("p90_ms", |r: &mut Acceleration| r.p90_ms)
        .register_get("throughput_items_per_s", |r: &mut Acceleration| r.throughput_items_per_s)
        .register_get("runs", |r: &mut Acceleration| r.runs() as i64)
        .register_get("run_ms", |r: &mut Acceleration| {
            r.timings.run_ms.iter().map(|&x| Dynamic::from_float(x)).collect::<rhai::Array>()
        })
        .register_fn("to_string", |r: &mut Acceleration| acceleration_text(r))
        .register_fn("to_debug", |r: &mut Acceleration| acceleration_text(r));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_that_cells_error_and_the_session_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = host_in(dir.path());
        // Stands for a bug anywhere under a native function.
        host.engine.register_fn("explode", || -> i64 { panic!("index out of bounds: the len is 0") });
        assert!(host.eval("let kept = 41;").unwrap().is_unit());
        let err = host.eval("explode()").unwrap_err();
        assert_eq!(err.kind, "InternalError");
        assert!(err.message.contains("index out of bounds") && err.message.contains("session goes on"), "{err}");
        assert_eq!(host.eval("kept + 1").unwrap().as_int().unwrap(), 42);
    }

    fn host_in(dir: &std::path::Path) -> ScriptHost {
        let config =
            Config { db_path: dir.join("results.duckdb"), models_dir: dir.join("models"), ort_dir: dir.to_path_buf() };
        ScriptHost::new(config, Arc::new(|_, _| {})).unwrap()
    }

    #[test]
    fn completion_offers_what_results_frames_and_plots_really_have() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_in(dir.path());
        for name in
            ["latency_ms", "ops", "run_ms", "to_string", "columns", "height", "rows", "sql", "save", "to_svg", "width"]
        {
            assert!(host.members.iter().any(|m| m == name), "{name} missing from {:?}", host.members);
        }
        assert!(!host.members.iter().any(|m| m == "to_debug" || m.contains('$')), "{:?}", host.members);
        assert_eq!(host.view().complete("r.laten", 7).2, ["latency_ms"]);
    }

    #[test]
    fn a_variable_reads_as_json_and_a_frame_as_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = host_in(dir.path());
        host.eval(r#"let m = #{ name: "minilm", ms: [1.5, 2] }; let f = sql("SELECT 1 AS one");"#).unwrap();
        let view = host.view();
        let m: serde_json::Value = serde_json::from_str(&view.variable_json("m").unwrap()).unwrap();
        assert_eq!(m, serde_json::json!({ "name": "minilm", "ms": [1.5, 2] }));
        let f: serde_json::Value = serde_json::from_str(&view.variable_json("f").unwrap()).unwrap();
        assert!(f.as_str().is_some_and(|text| text.contains("one")), "{f}");
        assert_eq!(view.variable_json("nothing"), None);
    }
}

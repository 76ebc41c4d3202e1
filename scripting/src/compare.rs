//! `compare(#{models, platforms, precisions, browsers, runs, warmup, ...})`: the grid of
//! models × browsers × platforms × precisions. Each cell is one `accelerate` run whose row goes
//! into DuckDB as soon as it finishes (a failed cell is a row with its error, and the grid goes
//! on). The experiment itself is a row in `experiments`. The result is the summary Frame (n,
//! median, p90, mean, std, bootstrap CIs, speedup against the baseline platform) with its
//! default plots.

use std::sync::Arc;

use chrono::Utc;
use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::{BrowserTarget, Platform};
use webaccel_results::{plot, ExperimentRecord, ExperimentStatus, Frame, PlotOptions, SummaryOptions};

use crate::error::ApiError;
use crate::frames::FrameValue;
use crate::families::{self, generation};
use crate::options::{AccelerateOptions, OptionValue, MAX_WARMUP_S};
use crate::platform::RunPlatform;
use crate::services::Services;

const FUNCTION: &str = "compare";
pub(crate) const KEYS: [&str; 22] = [
    "models",
    "platforms",
    "precisions",
    "browsers",
    "runs",
    "warmup",
    "warmup_s",
    "input",
    "inputs",
    "baseline",
    "accuracy",
    "mixed_precision",
    "profile_ops",
    "precompile_shaders",
    "threads",
    "parallel",
    "max_new_tokens",
    "chat",
    "temperature",
    "top_k",
    "seed",
    "language",
];

/// The grid as the user gave it, checked.
#[derive(Debug, Clone)]
pub struct Grid {
    pub models: Vec<String>,
    pub platforms: Vec<RunPlatform>,
    /// None: the model's default file.
    pub precisions: Vec<Option<u32>>,
    /// None: chosen per cell by the selection table.
    pub browsers: Vec<Option<BrowserTarget>>,
    pub base: AccelerateOptions,
    pub input: Option<Dynamic>,
    pub inputs: Map,
    pub baseline: Option<RunPlatform>,
    /// Intra-op threads of the native cells.
    pub threads: Option<u32>,
    /// Run cells on different machines at the same time (each machine one cell at a time).
    pub parallel: bool,
}

/// One cell of the grid: which model, where, at which precision.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    pub model: usize,
    pub browser: Option<BrowserTarget>,
    pub platform: RunPlatform,
    pub precision: Option<u32>,
}

fn list<'a>(opt: &OptionValue<'a>) -> Result<Array, ApiError> {
    let array: Array = opt.value.clone().try_cast().ok_or_else(|| opt.bad("must be an array".into()))?;
    if array.is_empty() {
        return Err(opt.bad("must not be empty".into()));
    }
    Ok(array)
}

impl Grid {
    pub fn from_map(map: &Map) -> Result<Grid, ApiError> {
        let mut grid = Grid {
            models: vec![],
            platforms: Platform::ALL.into_iter().map(RunPlatform::Browser).collect(),
            precisions: vec![None],
            browsers: vec![None],
            base: AccelerateOptions { warmup_s: 1.0, fallback: false, ..AccelerateOptions::default() },
            input: None,
            inputs: Map::new(),
            baseline: None,
            threads: None,
            parallel: false,
        };
        let mut baseline_given = false;
        for (key, value) in map {
            let opt = OptionValue { function: FUNCTION, key, value };
            match key.as_str() {
                "models" => {
                    grid.models = opt.strings("must be an array", "model names")?;
                    if grid.models.is_empty() {
                        return Err(opt.bad("must not be empty".into()));
                    }
                }
                "platforms" => {
                    grid.platforms = list(&opt)?
                        .iter()
                        .map(|p| OptionValue { function: FUNCTION, key, value: p }.platform())
                        .collect::<Result<_, _>>()?
                }
                "precisions" => {
                    grid.precisions = list(&opt)?
                        .iter()
                        .map(|p| {
                            let bits = OptionValue { function: FUNCTION, key, value: p }.count(4, 32)?;
                            if ![4, 8, 16, 32].contains(&bits) {
                                return Err(opt.bad(format!("must hold 4, 8, 16 or 32, not {bits}")));
                            }
                            Ok(Some(bits))
                        })
                        .collect::<Result<_, _>>()?
                }
                "browsers" => {
                    grid.browsers = list(&opt)?
                        .iter()
                        .map(|b| {
                            let one = OptionValue { function: FUNCTION, key, value: b };
                            if one.string()? == "auto" {
                                Ok(None)
                            } else {
                                one.browser(", auto").map(Some)
                            }
                        })
                        .collect::<Result<_, _>>()?
                }
                "runs" => grid.base.runs = opt.count(1, 100_000)?,
                "warmup" => grid.base.warmup = opt.count(0, 100_000)?,
                "warmup_s" => grid.base.warmup_s = opt.seconds(0.0, MAX_WARMUP_S)?,
                "threads" => grid.threads = Some(opt.count(1, 256)?),
                "parallel" => grid.parallel = opt.boolean()?,
                "accuracy" => grid.base.accuracy = opt.boolean()?,
                "mixed_precision" => grid.base.mixed_precision = Some(opt.boolean()?),
                "profile_ops" => grid.base.profile_ops = opt.boolean()?,
                // Off, a cell's first timed run pays its shader compilation (a generation model's
                // precompile run is a whole generation, minutes on a CPU-emulated adapter).
                "precompile_shaders" => grid.base.precompile_shaders = opt.boolean()?,
                "input" => grid.input = Some(value.clone()),
                // For the grid's generation models (other models ignore them).
                k if generation::KEYS.contains(&k) => {
                    grid.base.generate.set(&opt)?;
                }
                "inputs" => {
                    grid.inputs =
                        value.clone().try_cast().ok_or_else(|| opt.bad("must be a map of model name → input".into()))?
                }
                "baseline" => {
                    baseline_given = true;
                    grid.baseline = if value.is_unit() { None } else { Some(opt.platform()?) };
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
        if grid.models.is_empty() {
            return Err(ApiError::BadOption {
                function: FUNCTION,
                key: "models".into(),
                problem: "is required: an array of model names or .onnx paths".into(),
            });
        }
        let wasm = RunPlatform::Browser(Platform::Wasm);
        if !baseline_given {
            // wasm, the platform every browser has, where the grid has it.
            grid.baseline = grid.platforms.contains(&wasm).then_some(wasm);
        }
        if let Some(b) = grid.baseline.filter(|b| !grid.platforms.contains(b)) {
            return Err(ApiError::BadOption {
                function: FUNCTION,
                key: "baseline".into(),
                problem: format!(
                    "is \"{}\", which is not among the platforms; add it to `platforms`, or pass baseline: ()",
                    b.name()
                ),
            });
        }
        if grid.threads.is_some() && !grid.platforms.contains(&RunPlatform::Native) {
            return Err(ApiError::BadOption {
                function: FUNCTION,
                key: "threads".into(),
                problem: "applies to the native cells, and `platforms` has no \"native\"".into(),
            });
        }
        Ok(grid)
    }

    /// The grid's cells in order: models × browsers × platforms × precisions, except that a
    /// native cell runs once per model and precision (no browser is involved).
    pub fn cell_list(&self) -> Vec<GridCell> {
        let mut cells = Vec::new();
        for model in 0..self.models.len() {
            for (b, browser) in self.browsers.iter().enumerate() {
                for &platform in &self.platforms {
                    if platform == RunPlatform::Native && b > 0 {
                        continue;
                    }
                    for &precision in &self.precisions {
                        let browser = if platform == RunPlatform::Native { None } else { browser.clone() };
                        cells.push(GridCell { model, browser, platform, precision });
                    }
                }
            }
        }
        cells
    }

    pub fn cells(&self) -> usize {
        self.cell_list().len()
    }

    /// The options of one cell: the grid's, with what applies to this cell's platform.
    pub(crate) fn cell_options(&self, cell: &GridCell) -> AccelerateOptions {
        let native = cell.platform == RunPlatform::Native;
        AccelerateOptions {
            platform: Some(cell.platform),
            browser: cell.browser.clone(),
            precision: cell.precision,
            threads: if native { self.threads } else { None },
            // The profiler runs in the page: native cells are timed without it.
            profile_ops: self.base.profile_ops && !native,
            ..self.base.clone()
        }
    }

    /// The spec as stored in `experiments`: what was asked, in plain JSON.
    fn spec_json(&self) -> String {
        serde_json::json!({
            "models": self.models,
            "platforms": self.platforms.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "precisions": self.precisions,
            "browsers": self.browsers.iter().map(|b| b.as_ref().map_or_else(|| "auto".to_string(), |k| k.name())).collect::<Vec<_>>(),
            "runs": self.base.runs,
            "warmup": self.base.warmup,
            "warmup_s": self.base.warmup_s,
            "baseline": self.baseline.map(|p| p.name()),
            "accuracy": self.base.accuracy,
            "threads": self.threads,
            "parallel": self.parallel,
        })
        .to_string()
    }

    /// The input for `model`: `inputs[model]`, else `input`, else its family's default (sentences,
    /// a prompt).
    fn input_for(&self, services: &Services, model: &str) -> Result<Dynamic, ApiError> {
        if let Some(i) = self.inputs.get(model) {
            return Ok(i.clone());
        }
        if let Some(i) = &self.input {
            return Ok(i.clone());
        }
        if let Some(i) = services.catalog.resolve(model).ok().and_then(|m| families::of(&m.processing).default_input()) {
            return Ok(i);
        }
        Err(ApiError::BadOption {
            function: FUNCTION,
            key: "inputs".into(),
            problem: format!(
                "has no input for {model}; give `input` for all models or `inputs: #{{\"{model}\": ...}}`"
            ),
        })
    }
}

pub fn compare(services: &Services, options: &Map) -> Result<FrameValue, ApiError> {
    let grid = Grid::from_map(options)?;
    services.open_store()?;
    // Inputs are checked before anything runs, so a missing one does not cost a grid.
    let inputs: Vec<Dynamic> = grid.models.iter().map(|m| grid.input_for(services, m)).collect::<Result<_, _>>()?;
    let experiment_id = uuid::Uuid::now_v7().to_string();
    services.with_store(|store| {
        Ok(store.append_experiment(&ExperimentRecord {
            experiment_id: experiment_id.clone(),
            started_at: Utc::now(),
            spec: grid.spec_json(),
        })?)
    })?;
    let progress = services.progress();
    if let Some(p) = &progress {
        p.start("compare", grid.cells());
    }
    let run = crate::cells::run(services, &grid, &inputs, &experiment_id, progress.as_deref());
    if let Err(e) = run.outcome {
        if let Some(p) = &progress {
            p.finish();
        }
        // The cells that finished keep their rows; the one in flight has an `interrupted` row.
        let status =
            if matches!(e, ApiError::Interrupted) { ExperimentStatus::Interrupted } else { ExperimentStatus::Error };
        services.with_store(|store| {
            store.finish_experiment(&experiment_id, status, Some(&e.to_string()), Utc::now())?;
            Ok(store.record_experiment_times(&experiment_id, run.wall_ms, run.cells_ms)?)
        })?;
        return Err(e);
    }
    if let Some(p) = &progress {
        p.finish();
    }
    services.with_store(|store| {
        store.finish_experiment(&experiment_id, ExperimentStatus::Ok, None, Utc::now())?;
        Ok(store.record_experiment_times(&experiment_id, run.wall_ms, run.cells_ms)?)
    })?;
    let mut frame = summary(services, &experiment_id, grid.baseline)?;
    frame.times = Some((run.wall_ms, run.cells_ms));
    Ok(frame)
}

/// The experiment's summary frame and its default plots: latency by platform × precision, the
/// speedup against the baseline, and accuracy against latency.
fn summary(services: &Services, experiment_id: &str, baseline: Option<RunPlatform>) -> Result<FrameValue, ApiError> {
    let rows = services.with_store(|store| Ok(store.experiment_runs(experiment_id)?))?;
    let mut opts = SummaryOptions::latency_grid(baseline.map(|p| p.name()));
    opts.group_by.push("model_file".into());
    let summary = webaccel_results::stats::summarize_frame(&rows, &opts)?;
    let accuracy = accuracy_per_cell(&rows)?;
    let summary = join_accuracy(summary, accuracy)?;
    let generated = generation_summary(&rows, &opts)?;
    let summary = match &generated {
        Some((ttft, decode)) => join_generation(summary, ttft, decode, &opts.group_by)?,
        None => summary,
    };
    let view = Arc::new(table_view(&summary, baseline.is_some(), generated.is_some())?);
    let options = PlotOptions::default();
    // A grid whose every cell failed has no latency to draw: its frame (the errors) is the
    // result, without plots.
    let measured = summary.f64_column("median")?.iter().any(Option::is_some);
    let mut plots = Vec::new();
    if measured {
        plots.push(plot::latency_by_platform(&summary, &options)?);
    }
    if measured && baseline.is_some() && summary.f64_column("speedup")?.iter().any(Option::is_some) {
        plots.push(plot::speedup(&summary, &options)?);
    }
    if generated.is_some() {
        for (y, label, title) in [
            ("decode_tokens_per_s", "decode tokens/s (median), 95% CI", "Decode tokens/s by platform and precision"),
            ("ttft_ms", "time to first token (ms, median), 95% CI", "Time to first token by platform and precision"),
        ] {
            if summary.f64_column(y)?.iter().any(Option::is_some) {
                plots.push(plot::summary_bars(&summary, y, label, None, title.into(), &options)?);
            }
        }
    }
    if summary.f64_column("accuracy_cosine")?.iter().any(Option::is_some) {
        plots.push(plot::accuracy_vs_latency(&summary, "median", "accuracy_cosine", Some("precision"), &options)?);
    }
    Ok(FrameValue {
        frame: Arc::new(summary),
        view: Some(view),
        plots,
        experiment_id: Some(experiment_id.to_string()),
        times: None,
    })
}

/// Each cell's accuracy, what it was against, whether its outputs were numbers and whether its
/// WebGPU adapter is a software one (one row per cell, so the first non-null value is the
/// cell's).
fn accuracy_per_cell(rows: &Frame) -> Result<Frame, ApiError> {
    Ok(rows.sql(
        "SELECT model_name, browser, platform, precision, model_file, \
         max(accuracy_cosine) AS accuracy_cosine, max(accuracy_max_abs_error) AS accuracy_max_abs_error, \
         max(accuracy_top1_agree) AS accuracy_top1_agree, min(accuracy_tokens_leading) AS accuracy_tokens_leading, \
         min(accuracy_tokens_share) AS accuracy_tokens_share, max(accuracy_wer) AS accuracy_wer, \
         median(real_time_factor) AS real_time_factor, any_value(accuracy_reference) AS accuracy_reference, \
         bool_and(outputs_finite) AS outputs_finite, bool_or(adapter_software) AS adapter_software FROM frame \
         GROUP BY model_name, browser, platform, precision, model_file",
    )?)
}

fn join_accuracy(summary: Frame, accuracy: Frame) -> Result<Frame, ApiError> {
    Ok(Frame::sql_over(
        &[("s", &summary), ("a", &accuracy)],
        "SELECT s.*, a.accuracy_cosine, a.accuracy_max_abs_error, a.accuracy_top1_agree, a.accuracy_tokens_leading, \
         a.accuracy_tokens_share, a.accuracy_wer, a.real_time_factor, a.accuracy_reference, \
         a.outputs_finite, a.adapter_software FROM s LEFT JOIN a \
         USING (model_name, browser, platform, precision, model_file)",
    )?)
}

/// For a grid with generation rows: the summaries of their time to first token and decode
/// rate (each timed generation one sample), as the latency is summarised.
fn generation_summary(rows: &Frame, opts: &SummaryOptions) -> Result<Option<(Frame, Frame)>, ApiError> {
    // A transcription's decoding is a generation per chunk, with the same columns.
    let generates = rows
        .text_column("model_type")?
        .iter()
        .any(|t| matches!(t.as_deref(), Some("text_generation" | "speech_to_text")));
    if !generates {
        return Ok(None);
    }
    let of = |value: &str| {
        let opts = SummaryOptions { value: value.into(), baseline: None, error_column: None, ..opts.clone() };
        webaccel_results::stats::summarize_frame(rows, &opts)
    };
    Ok(Some((of("ttfts_ms")?, of("decode_rates")?)))
}

fn join_generation(summary: Frame, ttft: &Frame, decode: &Frame, keys: &[String]) -> Result<Frame, ApiError> {
    let keys = keys.join(", ");
    Ok(Frame::sql_over(
        &[("s", &summary), ("t", ttft), ("d", decode)],
        &format!(
            "SELECT s.*, t.median AS ttft_ms, t.p90 AS ttft_p90_ms, t.median_ci_low AS ttft_ms_ci_low, \
             t.median_ci_high AS ttft_ms_ci_high, d.median AS decode_tokens_per_s, d.p90 AS decode_p90_tokens_per_s, \
             d.median_ci_low AS decode_tokens_per_s_ci_low, d.median_ci_high AS decode_tokens_per_s_ci_high \
             FROM s LEFT JOIN t USING ({keys}) LEFT JOIN d USING ({keys})"
        ),
    )?)
}

/// What a notebook shows of a summary: what a reader compares, in the order they compare it
/// (model, browser, platform, precision, n, median, p90, speedup with its interval, accuracy),
/// the file by its short name, and WebGPU on a software adapter marked as the CPU figure it is.
/// The frame itself keeps every column.
fn table_view(summary: &Frame, with_speedup: bool, with_generation: bool) -> Result<Frame, ApiError> {
    let (generation, tokens) = if with_generation {
        (
            "round(ttft_ms, 1) AS ttft_ms, round(decode_tokens_per_s, 2) AS decode_tok_s, \
             printf('[%.2f, %.2f]', decode_tokens_per_s_ci_low, decode_tokens_per_s_ci_high) AS decode_ci,",
            // Token agreement with the reference generation: leading tokens equal, share of positions.
            "CASE WHEN accuracy_tokens_leading IS NULL THEN NULL ELSE printf('%d leading, %.0f%%', \
             accuracy_tokens_leading, accuracy_tokens_share * 100) END AS tokens_agree, \
             round(accuracy_wer, 4) AS wer, round(real_time_factor, 2) AS real_time_factor,",
        )
    } else {
        ("", "")
    };
    let speedup = if with_speedup {
        "CASE WHEN speedup IS NULL THEN NULL ELSE printf('%.2f× [%.2f, %.2f]', speedup, speedup_ci_low, \
         speedup_ci_high) || CASE WHEN baseline_browser <> browser THEN ' vs ' || baseline_browser ELSE '' END END \
         AS speedup,"
    } else {
        ""
    };
    Ok(summary.sql(&format!(
        "SELECT model_name AS model, browser, \
         platform || CASE WHEN platform = 'webgpu' AND adapter_software THEN ' (CPU-emulated GPU: not a GPU figure)' \
         ELSE '' END AS platform, \
         precision, \
         CASE WHEN model_file LIKE 'derived/%' THEN regexp_extract(model_file, '([^/]+)\\.onnx$', 1) \
              WHEN model_file LIKE 'baf%' OR model_file LIKE 'Qm%' THEN left(model_file, 12) || '…' \
              WHEN model_file LIKE '/%' THEN regexp_extract(model_file, '[^/]+$') \
              ELSE 'packaged' END AS file, \
         n, round(median, 3) AS median_ms, round(p90, 3) AS p90_ms, {generation} {speedup} \
         CASE WHEN outputs_finite = false THEN 'outputs not finite' \
              WHEN accuracy_cosine IS NULL THEN NULL ELSE printf('%.6f', accuracy_cosine) END AS cosine, \
         {tokens} errors FROM frame"
    ))?)
}

//! How values look to people: plain text for terminals, and HTML for notebooks. The kernel
//! turns a `Display` into a MIME bundle; `webaccel run` prints the plain text.

use base64::Engine as _;
use rhai::Dynamic;
use webaccel_browser_runtime::OpTime;
use webaccel_results::{Plot, PlotFormat};

use crate::acceleration::{op_shares, Acceleration};
use crate::frames::{plot_text, FrameValue};
use crate::outputs::Agreement;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Display {
    pub plain: String,
    pub html: Option<String>,
    pub svg: Option<String>,
    /// PNG bytes.
    pub png: Option<Vec<u8>>,
}

pub fn render(value: &Dynamic) -> Option<Display> {
    if value.is_unit() {
        return None;
    }
    if let Some(acc) = value.clone().try_cast::<Acceleration>() {
        return Some(Display {
            plain: acceleration_text(&acc),
            html: Some(acceleration_html(&acc)),
            ..Display::default()
        });
    }
    if let Some(frame) = value.clone().try_cast::<FrameValue>() {
        return Some(frame_display(&frame));
    }
    if let Some(plot) = value.clone().try_cast::<Plot>() {
        return Some(plot_display(&plot));
    }
    let is_report = value.read_lock::<rhai::Map>().is_some_and(|map| crate::detect_report::is_report(&map));
    if is_report {
        if let Ok(report) = rhai::serde::from_dynamic::<serde_json::Value>(value) {
            let plain = crate::detect_report::summary(&report);
            return Some(Display { plain, html: Some(crate::detect_report::html(&report)), ..Display::default() });
        }
    }
    // A string shows as the literal it is, as every REPL shows one, so "42" and 42 differ.
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return Some(Display { plain: format!("{:?}", text.as_str()), ..Display::default() });
    }
    Some(Display { plain: value.to_string(), ..Display::default() })
}

/// A frame as a table; a `compare` summary also shows its plots under the table.
/// What a frame shows of itself (its view, when it has one) and the note that says so.
fn shown(f: &FrameValue) -> (&webaccel_results::Frame, Option<String>) {
    let shown = f.view.as_deref().unwrap_or(&f.frame);
    let note = f.view.is_some().then(|| {
        format!(
            "{} of the frame's {} columns shown; .columns lists them all, .rows() and .sql() read them",
            shown.column_names().len(),
            f.frame.column_names().len()
        )
    });
    (shown, note)
}

/// A frame as text, as `print` and a terminal show it.
pub fn frame_text(f: &FrameValue) -> String {
    let (frame, note) = shown(f);
    match note {
        Some(note) => format!("{frame}\n{note}"),
        None => frame.to_string(),
    }
}

fn frame_display(f: &FrameValue) -> Display {
    let plain = frame_text(f);
    let (frame, note) = shown(f);
    let mut html = frame.to_html().unwrap_or_else(|e| format!("<pre>{}</pre>", escape(&e.to_string())));
    if let Some(note) = note {
        html.push_str(&format!("<p class=\"webaccel-note\">{}</p>", escape(&note)));
    }
    for p in &f.plots {
        html.push_str(&format!("<div class=\"webaccel-plot\">{}</div>", inline_image(p)));
    }
    let plain = if f.plots.is_empty() {
        plain
    } else {
        format!("{plain}\n{} plot(s): .plots[i].save(\"file.svg\") writes one", f.plots.len())
    };
    Display { plain, html: Some(html), ..Display::default() }
}

fn inline_image(p: &Plot) -> String {
    match p.format {
        PlotFormat::Svg => p.svg().unwrap_or_default().to_string(),
        PlotFormat::Png => format!(
            "<img src=\"data:image/png;base64,{}\" width=\"{}\" height=\"{}\"/>",
            base64::engine::general_purpose::STANDARD.encode(&p.bytes),
            p.width,
            p.height
        ),
    }
}

fn plot_display(p: &Plot) -> Display {
    match p.format {
        PlotFormat::Svg => Display { plain: plot_text(p), svg: p.svg().map(str::to_string), ..Display::default() },
        PlotFormat::Png => Display { plain: plot_text(p), png: Some(p.bytes.clone()), ..Display::default() },
    }
}

/// Below this cosine to the reference, outputs are wrong rather than imprecise (int4 L3 keeps
/// 0.978; a broken kernel gave -0.14), and the display says so.
const SUSPECT_COSINE: f64 = 0.9;

fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2} ms")
    } else {
        "null".into()
    }
}

fn fields(acc: &Acceleration) -> Vec<(&'static str, String)> {
    let precision = match acc.precision {
        Some(bits) => format!("{bits}-bit file {}: {} weights, {} compute", acc.file, acc.weights, acc.compute),
        None => format!("{} (precision not known to webaccel)", acc.file),
    };
    let accuracy = match (&acc.accuracy, &acc.accuracy_reference) {
        (Some(Agreement { tokens: Some((leading, share)), wer, .. }), Some(reference)) => format!(
            "{}{}{leading} leading tokens equal, {:.0}% of positions vs {reference}",
            if *share < 1.0 { "tokens differ from the reference: " } else { "" },
            wer.map_or(String::new(), |w| format!("word error rate {:.1}%, ", w * 100.0)),
            share * 100.0
        ),
        (Some(Agreement { cosine: Some(cosine), max_abs_error: Some(max_abs_error), top1, .. }), Some(reference)) => format!(
            "{}cosine {:.6}, max |error| {:.2e}{} vs {reference}",
            if *cosine < SUSPECT_COSINE { "WARNING, these outputs disagree with the reference: " } else { "" },
            cosine,
            max_abs_error,
            top1.map_or(String::new(), |t| format!(", top-1 agreement {:.0}%", t * 100.0))
        ),
        (_, Some(why)) => format!("null ({why})"),
        _ => "null".into(),
    };
    let reused = |what: &str| format!("null (the session was reused: its {what} was measured by an earlier call)");
    let mut rows = vec![
        ("model", format!("{} ({})", acc.model, acc.model_type)),
        ("precision", precision),
        ("browser", format!("{} {}", acc.browser, acc.browser_version)),
        ("platform", {
            let ran = match &acc.device {
                Some(d) => format!("{} ({d})", acc.platform),
                None => acc.platform.clone(),
            };
            let ran = if acc.platform == "webgpu" && acc.adapter_software == Some(true) {
                format!("{ran} — CPU-emulated GPU: not a GPU figure")
            } else {
                ran
            };
            if acc.requested_platform == acc.platform {
                ran
            } else {
                format!("{ran}, requested {}", acc.requested_platform)
            }
        }),
        ("fallback", acc.fallback_reason.clone().unwrap_or_else(|| "none".into())),
        ("selection", acc.selection_reason.clone()),
        (
            "output",
            match &acc.non_finite {
                Some(why) => format!("WARNING, not all numbers: {why}; {}", acc.output.summary()),
                None => acc.output.summary(),
            },
        ),
        ("accuracy", accuracy),
        (
            "model_fetch_ms",
            match (acc.timings.model_fetch_ms, acc.browser.as_str()) {
                (Some(v), _) => ms(v),
                (None, "native") => "null (native onnxruntime reads the file itself)".into(),
                (None, _) => reused("model fetch"),
            },
        ),
        ("session_create_ms", acc.timings.session_create_ms.map_or_else(|| reused("creation"), ms)),
        (
            "precompile_ms",
            match (acc.timings.precompile_ms, acc.timings.session_reused, acc.browser.as_str()) {
                (Some(v), _, _) => ms(v),
                (None, _, "native") => "null (native onnxruntime compiles no shaders)".into(),
                (None, true, _) => reused("precompile run"),
                (None, false, _) => "null (precompile_shaders: false)".into(),
            },
        ),
        ("first_run_ms", acc.timings.first_run_ms.map_or_else(|| reused("first run"), ms)),
        ("warmup", format!("{} runs in {}", acc.timings.warmup_runs, ms(acc.timings.warmup_ms))),
        ("latency_ms (p50)", ms(acc.latency_ms)),
        ("p90_ms", ms(acc.p90_ms)),
        ("runs", acc.runs().to_string()),
        (
            "memory",
            match (acc.memory_bytes, &acc.memory_error) {
                (Some(b), _) => format!("{:.1} MiB (browser-reported)", b as f64 / (1024.0 * 1024.0)),
                (None, Some(e)) => format!("null ({e})"),
                (None, None) => "not measured".into(),
            },
        ),
        (
            "throughput",
            if acc.throughput_items_per_s.is_finite() {
                let unit = if acc.speech.is_some() {
                    "audio s per s (real-time factor)"
                } else if acc.generation.is_some() {
                    "tokens/s (decode)"
                } else {
                    "items/s"
                };
                format!("{:.1} {unit}", acc.throughput_items_per_s)
            } else {
                "null".into()
            },
        ),
        ("run_id", acc.run_id.clone()),
    ];
    if let Some(g) = &acc.generation {
        let rate = |v: Option<f64>| v.map_or_else(|| "null (fewer than two tokens)".into(), |v| format!("{v:.1} tokens/s"));
        let at = rows.iter().position(|(k, _)| *k == "latency_ms (p50)").unwrap_or(rows.len());
        let figures = [
            ("tokens", format!("{} generated from a {}-token prompt", g.generated_tokens, g.prompt_tokens)),
            ("ttft_ms (p50)", g.ttft_ms.map_or_else(|| "null".into(), ms)),
            ("prefill", g.prefill_tokens_per_s.map_or_else(|| "null".into(), |v| format!("{v:.1} tokens/s"))),
            ("decode (p50)", rate(g.decode_tokens_per_s)),
            (
                "per token",
                match (g.per_token_p50_ms, g.per_token_p90_ms) {
                    (Some(p50), Some(p90)) => format!("p50 {}, p90 {}", ms(p50), ms(p90)),
                    _ => "null (fewer than two tokens)".into(),
                },
            ),
        ];
        for (i, f) in figures.into_iter().enumerate() {
            rows.insert(at + i, f);
        }
    }
    if let Some(s) = &acc.speech {
        let at = rows.iter().position(|(k, _)| *k == "tokens").unwrap_or(rows.len());
        let figures = [
            ("audio", format!("{:.2} s in {} chunk(s)", s.audio_seconds, s.chunks)),
            ("encoder_ms (p50)", s.encoder_ms.map_or_else(|| "null".into(), ms)),
            ("real-time factor", s.real_time_factor.map_or_else(|| "null".into(), |v| format!("{v:.1}× (audio s per s)"))),
        ];
        for (i, f) in figures.into_iter().enumerate() {
            rows.insert(at + i, f);
        }
    }
    if let (Some(total), Some(on_ep)) = (acc.nodes_total, acc.nodes_on_ep) {
        let placed = if on_ep == total {
            format!("all {total} nodes on the {} execution provider", acc.platform)
        } else {
            format!("{on_ep} of {total} nodes on the {} execution provider; the rest went to the CPU", acc.platform)
        };
        rows.insert(rows.len() - 1, ("placement", placed));
    }
    if !acc.details.is_empty() {
        let details = acc.details.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ");
        rows.insert(rows.len() - 1, ("assumed", details));
    }
    if let Some(ops) = &acc.ops {
        rows.insert(rows.len() - 1, ("ops (profiled)", op_summary(ops)));
    }
    rows
}

/// The five operator types that took the most kernel time, with their share of all of it.
fn op_summary(ops: &[OpTime]) -> String {
    let top: Vec<String> =
        op_shares(ops).take(5).map(|(o, share)| format!("{} {} ({:.0}%)", o.op, ms(o.ms), 100.0 * share)).collect();
    format!("{}; kernels {} per run in all", top.join(", "), ms(ops.iter().map(|o| o.ms).sum()))
}

pub fn acceleration_text(acc: &Acceleration) -> String {
    let rows = fields(acc);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}")).collect::<Vec<_>>().join("\n")
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn acceleration_html(acc: &Acceleration) -> String {
    let rows: String = fields(acc)
        .iter()
        .map(|(k, v)| {
            format!(
                "<tr><th style=\"text-align:left\">{}</th><td style=\"text-align:left\">{}</td></tr>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    format!("<table class=\"webaccel-acceleration\">{rows}</table>")
}

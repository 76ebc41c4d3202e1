//! How values look to people: plain text for terminals, and HTML for notebooks. The kernel
//! turns a `Display` into a MIME bundle; `webaccel run` prints the plain text.

use rhai::Dynamic;

use crate::accelerate::Acceleration;

#[derive(Debug, Clone, PartialEq)]
pub struct Display {
    pub plain: String,
    pub html: Option<String>,
}

pub fn render(value: &Dynamic) -> Option<Display> {
    if value.is_unit() {
        return None;
    }
    if let Some(acc) = value.clone().try_cast::<Acceleration>() {
        return Some(Display { plain: acceleration_text(&acc), html: Some(acceleration_html(&acc)) });
    }
    Some(Display { plain: value.to_string(), html: None })
}

/// Below this cosine to the reference, outputs are wrong rather than imprecise (int4 L3 keeps
/// 0.978; a broken kernel gave -0.14), and the display says so.
const SUSPECT_COSINE: f64 = 0.9;

fn fields(acc: &Acceleration) -> Vec<(&'static str, String)> {
    let ms = |v: f64| if v.is_finite() { format!("{v:.2} ms") } else { "null".into() };
    let precision = match acc.precision {
        Some(bits) => format!("{bits}-bit file {}: {} weights, {} compute", acc.file, acc.weights, acc.compute),
        None => format!("{} (precision not known to webaccel)", acc.file),
    };
    let accuracy = match (&acc.accuracy, &acc.accuracy_reference) {
        (Some(a), Some(reference)) => format!(
            "{}cosine {:.6}, max |error| {:.2e}{} vs {reference}",
            if a.cosine < SUSPECT_COSINE { "WARNING, these outputs disagree with the reference: " } else { "" },
            a.cosine,
            a.max_abs_error,
            a.top1.map_or(String::new(), |t| format!(", top-1 agreement {:.0}%", t * 100.0))
        ),
        (None, Some(why)) => format!("null ({why})"),
        _ => "null".into(),
    };
    vec![
        ("model", format!("{} ({})", acc.model, acc.model_type)),
        ("precision", precision),
        ("browser", format!("{} {}", acc.browser, acc.browser_version)),
        ("platform", {
            let ran = match &acc.device {
                Some(d) => format!("{} ({d})", acc.platform),
                None => acc.platform.clone(),
            };
            if acc.requested_platform == acc.platform {
                ran
            } else {
                format!("{ran}, requested {}", acc.requested_platform)
            }
        }),
        ("fallback", acc.fallback_reason.clone().unwrap_or_else(|| "none".into())),
        ("selection", acc.selection_reason.clone()),
        ("output", acc.output.summary()),
        ("accuracy", accuracy),
        (
            "session_create_ms",
            format!("{}{}", ms(acc.session_create_ms), if acc.session_reused { " (reused)" } else { "" }),
        ),
        ("precompile_ms", acc.precompile_ms.map_or("not precompiled".into(), ms)),
        ("first_run_ms", ms(acc.first_run_ms)),
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
                format!("{:.1} items/s", acc.throughput_items_per_s)
            } else {
                "null".into()
            },
        ),
        ("run_id", acc.run_id.clone()),
    ]
}

pub fn acceleration_text(acc: &Acceleration) -> String {
    let rows = fields(acc);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}")).collect::<Vec<_>>().join("\n")
}

fn escape(s: &str) -> String {
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

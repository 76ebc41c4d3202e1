//! `detect()`'s report as a person reads it: a few lines per browser (`webaccel detect`, and
//! the plain text of the value in a notebook), or a table (its HTML in a notebook). The report
//! itself stays a map, so scripts index it as before; `--json` prints it whole.

use rhai::{Dynamic, Map};
use serde_json::Value;
use webaccel_browser_runtime::BrowserTarget;

use crate::display::escape;

/// Whether a script value is a `detect()` report: a map from browser names to maps that say
/// whether the browser is available. Read on the map itself, so that rendering any other map
/// costs no conversion.
pub fn is_report(map: &Map) -> bool {
    !map.is_empty()
        && map.iter().all(|(name, b)| {
            BrowserTarget::parse(name).is_some()
                && b.read_lock::<Map>().is_some_and(|b| b.get("available").is_some_and(Dynamic::is_bool))
        })
}

/// The report of `detect()` (a map keyed by browser name) as text.
pub fn summary(report: &Value) -> String {
    let Some(browsers) = report.as_object() else { return report.to_string() };
    let mut out = String::new();
    for (name, b) in browsers {
        if b["available"] != true {
            let why = unavailable(b);
            out.push_str(&format!("{name}: {why}\n"));
            continue;
        }
        out.push_str(&format!("{name}: {} ({})\n", text(&b["version"]), text(&b["executable"])));
        out.push_str(&format!("  webgpu  {}\n", webgpu(&b["webgpu"])));
        out.push_str(&format!("  webnn   {}\n", webnn(&b["webnn"])));
        let wasm = &b["wasm"];
        out.push_str(&format!(
            "  wasm    simd {}, threads {}, cross-origin isolated {}\n",
            yes_no(&wasm["simd"]),
            yes_no(&wasm["threads"]["available"]),
            yes_no(&b["crossOriginIsolated"]),
        ));
        if let Some(why) = b["environment_error"].as_str() {
            out.push_str(&format!("  results {why}\n"));
        }
    }
    out
}

/// The report as an HTML table: a row per browser.
pub fn html(report: &Value) -> String {
    let Some(browsers) = report.as_object() else { return String::new() };
    let mut out = String::from(
        "<table><thead><tr><th>browser</th><th>version</th><th>WebGPU</th><th>WebNN</th><th>wasm</th></tr></thead><tbody>",
    );
    for (name, b) in browsers {
        let cells = if b["available"] == true {
            let wasm = &b["wasm"];
            [
                text(&b["version"]),
                webgpu(&b["webgpu"]),
                webnn(&b["webnn"]),
                format!(
                    "simd {}, threads {}, isolated {}",
                    yes_no(&wasm["simd"]),
                    yes_no(&wasm["threads"]["available"]),
                    yes_no(&b["crossOriginIsolated"])
                ),
            ]
        } else {
            [unavailable(b), String::new(), String::new(), String::new()]
        };
        out.push_str(&format!("<tr><td>{}</td>", escape(name)));
        for cell in cells {
            out.push_str(&format!("<td>{}</td>", escape(&cell)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Why a browser is not available, ending with what to do where the error says.
fn unavailable(b: &Value) -> String {
    let error = text(&b["error"]);
    if b["installed"] == false {
        // The error ends with what to do about it.
        let advice = error.rsplit_once(". ").map_or("", |(_, advice)| advice);
        if advice.is_empty() {
            "not installed".to_string()
        } else {
            format!("not installed. {advice}")
        }
    } else {
        format!("failed to start: {error}")
    }
}

fn webgpu(gpu: &Value) -> String {
    if gpu["available"] != true {
        return format!("none ({})", text(&gpu["error"]));
    }
    let adapter = &gpu["adapter"];
    let named: Vec<&str> = ["vendor", "architecture", "device"]
        .iter()
        .filter_map(|k| adapter[k].as_str().filter(|s| !s.is_empty()))
        .collect();
    let mut line = if named.is_empty() { "an unnamed adapter".to_string() } else { named.join(" ") };
    if adapter["isFallbackAdapter"] == true {
        line.push_str(" (fallback adapter)");
    }
    if gpu["software"] == true {
        line.push_str(" (CPU-emulated: not a GPU)");
    }
    let features = gpu["features"].as_array().map_or(0, Vec::len);
    let f16 = gpu["features"].as_array().is_some_and(|f| f.iter().any(|x| x == "shader-f16"));
    line.push_str(&format!(", {features} features, {}shader-f16", if f16 { "" } else { "no " }));
    if let Some(bytes) = gpu["limits"]["maxBufferSize"].as_u64() {
        line.push_str(&format!(", maxBufferSize {} MiB", bytes >> 20));
    }
    line
}

/// Devices with a context, or the browser's error once when every device gave the same one.
fn webnn(devices: &Value) -> String {
    let Some(devices) = devices.as_object() else { return "not reported".into() };
    let working: Vec<&str> = devices.iter().filter(|(_, d)| d["available"] == true).map(|(k, _)| k.as_str()).collect();
    if !working.is_empty() {
        return working.join(", ");
    }
    let mut errors: Vec<String> = devices.values().map(|d| text(&d["error"])).collect();
    errors.dedup();
    match errors.as_slice() {
        [one] => format!("none ({one})"),
        _ => format!(
            "none ({})",
            devices.iter().map(|(k, d)| format!("{k}: {}", text(&d["error"]))).collect::<Vec<_>>().join("; ")
        ),
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn yes_no(v: &Value) -> &'static str {
    if *v == true {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_block_per_browser_with_the_reasons_kept() {
        let report = json!({
            "chrome": {"available": false, "installed": false,
                       "error": "no chrome executable found; searched [\"/opt/a. b\"]. Install it or set WEBACCEL_CHROME"},
            "firefox": {
                "available": true, "version": "Firefox/153.7.0", "executable": "/usr/bin/firefox-esr",
                "crossOriginIsolated": true,
                "wasm": {"simd": true, "threads": {"available": true, "error": null}},
                "webgpu": {"available": true, "adapter": {"vendor": "", "architecture": "", "isFallbackAdapter": true},
                           "features": ["shader-f16", "timestamp-query"], "limits": {"maxBufferSize": 1073741824u64}},
                "webnn": {"cpu": {"available": false, "error": "navigator.ml is undefined"},
                          "gpu": {"available": false, "error": "navigator.ml is undefined"}},
            },
        });
        let text = summary(&report);
        assert!(text.contains("chrome: not installed. Install it or set WEBACCEL_CHROME\n"), "{text}");
        assert!(text.contains("firefox: Firefox/153.7.0 (/usr/bin/firefox-esr)\n"), "{text}");
        assert!(
            text.contains(
                "  webgpu  an unnamed adapter (fallback adapter), 2 features, shader-f16, maxBufferSize 1024 MiB\n"
            ),
            "{text}"
        );
        assert!(text.contains("  webnn   none (navigator.ml is undefined)\n"), "{text}");
        assert!(text.contains("  wasm    simd yes, threads yes, cross-origin isolated yes\n"), "{text}");

        let as_map = |v: &Value| rhai::serde::to_dynamic(v).unwrap().cast::<Map>();
        assert!(is_report(&as_map(&report)));
        assert!(
            !is_report(&as_map(&json!({"chromium": 1}))) && !is_report(&as_map(&json!({"cat": {"available": true}})))
        );
        let table = html(&report);
        assert!(table.contains("<td>firefox</td><td>Firefox/153.7.0</td>"), "{table}");
        assert!(table.contains("<td>chrome</td><td>not installed. Install it or set WEBACCEL_CHROME</td>"), "{table}");
    }
}

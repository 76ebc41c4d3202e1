//! `webaccel detect` as a person reads it: a few lines per browser. `--json` prints the whole
//! report instead.

use serde_json::Value;

/// The report of `detect()` (a map keyed by browser name) as text.
pub fn summary(report: &Value) -> String {
    let Some(browsers) = report.as_object() else { return report.to_string() };
    let mut out = String::new();
    for (name, b) in browsers {
        if b["available"] != true {
            let why = if b["installed"] == false {
                // The error ends with what to do about it.
                let error = text(&b["error"]);
                let advice = error.rsplit_once(". ").map_or("", |(_, advice)| advice);
                if advice.is_empty() {
                    "not installed".to_string()
                } else {
                    format!("not installed. {advice}")
                }
            } else {
                format!("failed to start: {}", text(&b["error"]))
            };
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
    }
    out
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
    }
}

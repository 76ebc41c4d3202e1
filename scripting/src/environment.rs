//! What ran the model (a browser, or native onnxruntime on this machine's CPU), fingerprinted so
//! that every run row can reference the one `environments` row that describes it.

use chrono::Utc;
use sha2::{Digest, Sha256};
use webaccel_browser_runtime::PooledBrowser;
use webaccel_native_runtime::NativeRuntime;
use webaccel_results::EnvironmentRecord;

fn fingerprint(flags: &str, capabilities: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(flags.as_bytes());
    hasher.update([0]);
    hasher.update(capabilities.as_bytes());
    hex::encode(hasher.finalize())[..16].to_string()
}

/// The fingerprint covers the browser build, its executable, its launch switches and every
/// capability it reported: change any of them and it is a different environment.
pub fn browser_environment(pooled: &PooledBrowser) -> EnvironmentRecord {
    let caps = &pooled.capabilities;
    let flags = serde_json::to_string(pooled.session.flags()).unwrap_or_default();
    let capabilities = serde_json::to_string(caps).unwrap_or_default();
    EnvironmentRecord {
        fingerprint: fingerprint(&flags, &capabilities),
        first_seen: Utc::now(),
        browser: caps.browser.clone(),
        version: Some(caps.version.clone()),
        executable: Some(caps.executable.display().to_string()),
        flags,
        adapter: caps.page.webgpu.adapter.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default()),
        capabilities,
    }
}

/// Native onnxruntime: its version and library, the thread count, and the CPU it ran on.
pub fn native_environment(native: &NativeRuntime, threads: u32) -> EnvironmentRecord {
    let flags = serde_json::json!([format!("--intra-op-threads={threads}")]).to_string();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines()
            .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
    });
    let capabilities = serde_json::json!({
        "onnxruntime": native.version,
        "library": native.library,
        "execution_provider": "CPUExecutionProvider",
        "cpu": cpu,
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
    })
    .to_string();
    EnvironmentRecord {
        fingerprint: fingerprint(&flags, &capabilities),
        first_seen: Utc::now(),
        browser: "native".into(),
        version: Some(format!("onnxruntime {}", native.version)),
        executable: Some(native.library.display().to_string()),
        flags,
        adapter: None,
        capabilities,
    }
}

//! A detected browser environment: what ran the model, fingerprinted so that every run row can
//! reference the one `environments` row that describes it.

use chrono::Utc;
use sha2::{Digest, Sha256};
use webaccel_browser_runtime::PooledBrowser;
use webaccel_results::EnvironmentRecord;

/// The fingerprint covers the browser build, its executable, its launch switches and every
/// capability it reported: change any of them and it is a different environment.
pub fn environment(pooled: &PooledBrowser) -> EnvironmentRecord {
    let caps = &pooled.capabilities;
    let flags = serde_json::to_string(pooled.session.flags()).unwrap_or_default();
    let capabilities = serde_json::to_string(caps).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(flags.as_bytes());
    hasher.update([0]);
    hasher.update(capabilities.as_bytes());
    let fingerprint = hex::encode(hasher.finalize())[..16].to_string();
    EnvironmentRecord {
        fingerprint,
        first_seen: Utc::now(),
        browser: caps.browser.clone(),
        version: Some(caps.version.clone()),
        executable: Some(caps.executable.display().to_string()),
        flags,
        adapter: caps.page.webgpu.adapter.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default()),
        capabilities,
    }
}

//! What a browser can really do, as measured inside a page. Every field comes from the
//! browser; where it refused, the exact error it gave is kept.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Whether a feature works, and the browser's own error when it does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub available: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterInfo {
    pub vendor: Option<String>,
    pub architecture: Option<String>,
    pub device: Option<String>,
    pub description: Option<String>,
    pub is_fallback_adapter: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebGpu {
    pub available: bool,
    pub error: Option<String>,
    pub adapter: Option<AdapterInfo>,
    pub features: Vec<String>,
    /// Integers, as the adapter reports them.
    pub limits: BTreeMap<String, serde_json::Number>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wasm {
    pub simd: bool,
    pub threads: Availability,
}

/// The page's report, as `runtime.js` `capabilities()` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageCapabilities {
    pub user_agent: String,
    pub hardware_concurrency: Option<u32>,
    pub cross_origin_isolated: bool,
    pub wasm: Wasm,
    pub webgpu: WebGpu,
    /// Keyed by WebNN device type: cpu, gpu, npu.
    pub webnn: BTreeMap<String, Availability>,
}

/// The Grid node a remote browser runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteNode {
    pub hub: String,
    pub uri: String,
    pub os: String,
    /// The slot's `browserName`.
    pub browser_name: String,
    /// The stereotype's `webaccel:*` capabilities (`gpu`, `device`, ...), without the prefix.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// One browser's capabilities: the page's report plus what the host knows of the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub browser: String,
    pub version: String,
    /// The executable, or for a remote browser its node's URI.
    pub executable: PathBuf,
    /// For a remote browser: the node (part of its environment's fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<RemoteNode>,
    #[serde(flatten)]
    pub page: PageCapabilities,
}

impl Capabilities {
    pub fn webnn_available(&self) -> bool {
        self.page.webnn.values().any(|d| d.available)
    }
}

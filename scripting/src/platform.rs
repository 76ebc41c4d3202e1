//! Where a model runs, as scripts name it: a platform inside a browser page (webnn, webgpu,
//! wasm), or `native`, onnxruntime on this machine's CPU in the host process, the figure users
//! most want the browser figures against.

use webaccel_browser_runtime::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunPlatform {
    Browser(Platform),
    Native,
}

impl RunPlatform {
    /// Every name, as error messages list them.
    pub const NAMES: &'static str = "webgpu, webnn, wasm, native";

    pub fn name(self) -> &'static str {
        match self {
            RunPlatform::Browser(p) => p.name(),
            RunPlatform::Native => "native",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        if name == "native" {
            return Some(RunPlatform::Native);
        }
        Platform::parse(name).map(RunPlatform::Browser)
    }

    /// The page's execution provider, for the browser platforms.
    pub fn browser(self) -> Option<Platform> {
        match self {
            RunPlatform::Browser(p) => Some(p),
            RunPlatform::Native => None,
        }
    }

    /// The names onnxruntime gives this platform's execution provider in its placement log
    /// (ORT-web's WebGPU provider is `WebGpuExecutionProvider` in its native-WebGPU build and
    /// `JsExecutionProvider` in the JSEP one).
    pub fn providers(self) -> &'static [&'static str] {
        match self {
            RunPlatform::Browser(Platform::Wasm) | RunPlatform::Native => &["CPUExecutionProvider"],
            RunPlatform::Browser(Platform::Webgpu) => &["WebGpuExecutionProvider", "JsExecutionProvider"],
            RunPlatform::Browser(Platform::Webnn) => &["WebNNExecutionProvider"],
        }
    }
}

impl From<Platform> for RunPlatform {
    fn from(p: Platform) -> Self {
        RunPlatform::Browser(p)
    }
}

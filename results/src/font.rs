//! The font plots measure and draw text with. Plotters' default font support (`ttf`) asks
//! fontconfig through font-kit, which needs the fontconfig development files at build time and
//! a configured fontconfig at run time; a headless kernel has neither reliably. Its `ab_glyph`
//! support instead takes font bytes we register, so we read one TrueType file ourselves:
//! `WEBACCEL_FONT`, else DejaVu Sans (Debian `fonts-dejavu-core`, which scripts/setup.sh
//! installs), else Liberation Sans, at the paths Debian, Fedora and Arch use.
//! SVG output names the family `sans-serif`, so a viewer draws it with its own sans font;
//! the registered file only sizes the text for layout.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Result, ResultsError};

const CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// The family name charts use, and under which the font is registered.
pub const FAMILY: &str = "sans-serif";

fn candidates() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::env::var_os("WEBACCEL_FONT").map(PathBuf::from).into_iter().collect();
    paths.extend(CANDIDATES.iter().map(PathBuf::from));
    paths
}

/// Registers the font once per process; later calls return the first outcome.
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<PathBuf, Vec<PathBuf>>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        let tried = candidates();
        for path in &tried {
            let Ok(bytes) = std::fs::read(path) else { continue };
            // Plotters keeps a reference for the life of the process; the font is read once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                tracing::debug!(font = %path.display(), "plot font registered");
                return Ok(path.clone());
            }
            tracing::warn!(font = %path.display(), "not a usable TrueType font");
        }
        Err(tried)
    });
    match outcome {
        Ok(_) => Ok(()),
        Err(tried) => Err(ResultsError::NoFont { tried: tried.clone() }),
    }
}

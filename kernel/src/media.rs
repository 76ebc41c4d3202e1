//! Display values as Jupyter MIME bundles.

use base64::Engine as _;
use jupyter_protocol::{Media, MediaType};
use webaccel_scripting::Display;

pub fn bundle(display: &Display) -> Media {
    let mut types = vec![MediaType::Plain(display.plain.clone())];
    if let Some(html) = &display.html {
        types.push(MediaType::Html(html.clone()));
    }
    if let Some(svg) = &display.svg {
        types.push(MediaType::Svg(svg.clone()));
    }
    if let Some(png) = &display.png {
        // Jupyter carries binary images base64-encoded in the JSON bundle.
        types.push(MediaType::Png(base64::engine::general_purpose::STANDARD.encode(png)));
    }
    Media::new(types)
}

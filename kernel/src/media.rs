//! Display values as Jupyter MIME bundles.

use jupyter_protocol::{Media, MediaType};
use webaccel_scripting::Display;

pub fn bundle(display: &Display) -> Media {
    let mut types = vec![MediaType::Plain(display.plain.clone())];
    if let Some(html) = &display.html {
        types.push(MediaType::Html(html.clone()));
    }
    Media::new(types)
}

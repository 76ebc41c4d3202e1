//! The image-classification family: image files (PNG or JPEG) in, resized, centre-cropped and
//! normalised as the model was trained (`webaccel_models::vision`), as one batch; each image's
//! class probabilities out, ranked with the model's labels when shown.

use std::path::Path;

use rhai::Dynamic;
use webaccel_browser_runtime::Tensor;
use webaccel_models::{vision, ChannelOrder, VisionProcessing};

use super::{output, strings, Family, Preparing};
use crate::error::ApiError;
use crate::inputs::{details, ModelInput, Source};
use crate::outputs::Output;

impl Family for VisionProcessing {
    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError> {
        images(cx.model, self, &cx.inputs[0], input)
    }

    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
        let Source::Images { count, single } = &input.source else {
            return Ok(Output::Tensors(outputs.to_vec()));
        };
        let probs = output(outputs, &self.output)?.to_f32()?;
        let per = probs.len() / (*count).max(1);
        Ok(Output::Classes {
            probabilities: probs.chunks(per.max(1)).map(<[f32]>::to_vec).collect(),
            labels: self.labels.clone(),
            single: *single,
        })
    }
}

/// Image files, one or an array of them, as one [N, 3, crop, crop] batch named `name` (also for
/// a user's vision model, whose processing webaccel assumes).
pub fn images(model: &str, p: &VisionProcessing, name: &str, input: Dynamic) -> Result<ModelInput, ApiError> {
    let (paths, single) = strings(model, input, "an image file path (PNG or JPEG) or an array of them")?;
    let side = p.crop as usize;
    let mut data = Vec::with_capacity(paths.len() * 3 * side * side);
    for path in &paths {
        data.extend(vision::preprocess_file(Path::new(path), p)?);
    }
    let count = paths.len();
    let order = match p.channel_order {
        ChannelOrder::Rgb => "RGB",
        ChannelOrder::Bgr => "BGR",
    };
    let details = details(&[
        ("resize", format!("shorter side to {} px (Lanczos), centre crop {} × {} px", p.resize_short, p.crop, p.crop)),
        ("normalisation", format!("x/255, then (x − mean {:?}) / std {:?} per channel, {order} order", p.mean, p.std)),
        ("batch", format!("{count} images; throughput counts images")),
    ]);
    Ok(ModelInput {
        tensors: vec![Tensor::from_f32(name, vec![count, 3, side, side], &data)],
        source: Source::Images { count, single },
        items: count,
        dims: vec![count as u64],
        sequence: None,
        generation: None,
        fetches: vec![p.output.clone()],
        details,
    })
}

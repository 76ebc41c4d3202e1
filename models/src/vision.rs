//! Image pre- and post-processing for classifiers: decode (PNG/JPEG with the `image` crate),
//! resize the short side, centre-crop, normalise, lay out as NCHW; then label the class
//! probabilities.

use std::path::Path;

use image::imageops::FilterType;
use image::RgbImage;

use crate::catalog::{ChannelOrder, VisionProcessing};
use crate::error::{ModelError, Result};

/// Decodes an image file and turns it into the model's input: [3, crop, crop] floats.
pub fn preprocess_file(path: &Path, p: &VisionProcessing) -> Result<Vec<f32>> {
    let image = image::ImageReader::open(path)
        .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?
        .with_guessed_format()
        .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?
        .decode()
        .map_err(|e| ModelError::Image { path: path.to_path_buf(), reason: e.to_string() })?;
    preprocess(&image.to_rgb8(), p).map_err(|reason| ModelError::Image { path: path.to_path_buf(), reason })
}

/// Short side to `resize_short` (Lanczos3, the nearest to the OpenCV Lanczos the package
/// uses), centre crop, then (x/255 - mean)/std per channel in the model's channel order.
pub fn preprocess(image: &RgbImage, p: &VisionProcessing) -> std::result::Result<Vec<f32>, String> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    let scale = p.resize_short as f64 / w.min(h) as f64;
    let (rw, rh) = ((w as f64 * scale).round() as u32, (h as f64 * scale).round() as u32);
    if rw < p.crop || rh < p.crop {
        return Err(format!("resized to {rw}x{rh}, which is smaller than the {0}x{0} crop", p.crop));
    }
    // A same-size resize would still filter; skipping it keeps such images bit-exact.
    let resized =
        if (rw, rh) == (w, h) { image.clone() } else { image::imageops::resize(image, rw, rh, FilterType::Lanczos3) };
    let (x0, y0) = ((rw - p.crop) / 2, (rh - p.crop) / 2);
    let side = p.crop as usize;
    let mut out = vec![0f32; 3 * side * side];
    for y in 0..side {
        for x in 0..side {
            let pixel = resized.get_pixel(x0 + x as u32, y0 + y as u32).0;
            for c in 0..3 {
                let source = match p.channel_order {
                    ChannelOrder::Rgb => c,
                    ChannelOrder::Bgr => 2 - c,
                };
                let v = pixel[source] as f32 / 255.0;
                out[c * side * side + y * side + x] = (v - p.mean[c]) / p.std[c];
            }
        }
    }
    Ok(out)
}

/// One image's classes, most probable first.
pub fn label(probabilities: &[f32], labels: &[String]) -> Vec<(String, f32)> {
    let mut ranked: Vec<(String, f32)> = probabilities
        .iter()
        .enumerate()
        .map(|(i, &p)| (labels.get(i).cloned().unwrap_or_else(|| i.to_string()), p))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processing(order: ChannelOrder) -> VisionProcessing {
        VisionProcessing {
            resize_short: 4,
            crop: 2,
            mean: [0.5, 0.25, 0.0],
            std: [0.5, 0.25, 1.0],
            channel_order: order,
            output: "y".into(),
            labels: vec![],
        }
    }

    #[test]
    fn crop_normalise_and_channel_order_are_exact_without_a_resize() {
        // 4x4, pixel (x, y) = (10x, 10y, 200): no resize (short side is already 4), crop the
        // centre 2x2 (x, y in 1..3).
        let image = RgbImage::from_fn(4, 4, |x, y| image::Rgb([10 * x as u8, 10 * y as u8, 200]));
        let rgb = preprocess(&image, &processing(ChannelOrder::Rgb)).unwrap();
        let expect = |v: u8, c: usize| {
            let p = processing(ChannelOrder::Rgb);
            (v as f32 / 255.0 - p.mean[c]) / p.std[c]
        };
        // Channel 0 (R) at crop (0,0) is pixel (1,1); at crop (1,0) it is pixel (2,1).
        assert_eq!(rgb[0], expect(10, 0));
        assert_eq!(rgb[1], expect(20, 0));
        // Channel 1 (G) at crop (0,1) is pixel (1,2).
        assert_eq!(rgb[4 + 2], expect(20, 1));
        // BGR: channel 0 holds blue, normalised with the first mean/std.
        let bgr = preprocess(&image, &processing(ChannelOrder::Bgr)).unwrap();
        assert_eq!(bgr[0], expect(200, 0));
        assert_eq!(bgr[8], expect(10, 2));
    }

    #[test]
    fn too_small_and_empty_images_are_errors() {
        let p = VisionProcessing { crop: 5, ..processing(ChannelOrder::Rgb) };
        assert!(preprocess(&RgbImage::new(4, 4), &p).unwrap_err().contains("smaller than the 5x5 crop"));
        assert!(preprocess(&RgbImage::new(0, 3), &p).unwrap_err().contains("empty"));
    }

    #[test]
    fn labels_come_most_probable_first() {
        let labels: Vec<String> = ["0", "90", "180", "270"].iter().map(|s| s.to_string()).collect();
        let ranked = label(&[0.1, 0.6, 0.2, 0.1], &labels);
        assert_eq!(ranked[0], ("90".to_string(), 0.6));
        assert_eq!(ranked[1].0, "180");
    }
}

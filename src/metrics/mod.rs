//! Image-quality metrics of the paper's tables, as exact ports of what Artifact-Eraser ran
//! (ARCH.md §8). Images are planar `C×H×W` (or `N×C×H×W`) floats in [0, 1].

pub mod auroc;
pub mod esnle;
pub mod quality;
pub mod ssim;

pub use auroc::{auroc, downsample_mask};
pub use esnle::{esnle, esnle_255};
pub use quality::{Quality, QualityNetworks};
pub use ssim::ssim;

/// Every vertical and horizontal neighbour difference of planar images, through `f`, summed:
/// `(Σ f(∂h), Σ f(∂w))`.
fn neighbour_sums(images: &[f32], h: usize, w: usize, f: impl Fn(f64) -> f64) -> (f64, f64) {
    let (mut dh, mut dw) = (0f64, 0f64);
    for ch in images.chunks(h * w) {
        for y in 0..h {
            for x in 0..w {
                let v = ch[y * w + x] as f64;
                if y + 1 < h {
                    dh += f(ch[(y + 1) * w + x] as f64 - v);
                }
                if x + 1 < w {
                    dw += f(ch[y * w + x + 1] as f64 - v);
                }
            }
        }
    }
    (dh, dw)
}

/// Artifact-Eraser's TV (`eval_metric2.py::TV`): squared differences, each direction divided by
/// its count, averaged over the batch, × 255. Not the torchmetrics definition.
pub fn tv_artifact_eraser(images: &[f32], n: usize, c: usize, h: usize, w: usize) -> f64 {
    let (dh, dw) = neighbour_sums(&images[..n * c * h * w], h, w, |d| d * d);
    let count_h = ((h - 1) * w * c) as f64;
    let count_w = (h * (w - 1) * c) as f64;
    255.0 * (dh / count_h + dw / count_w) / n as f64
}

/// torchmetrics `TotalVariation` for one image: the L1 sum of both differences over C, H, W.
pub fn tv_l1_sum(image: &[f32], c: usize, h: usize, w: usize) -> f64 {
    let (dh, dw) = neighbour_sums(&image[..c * h * w], h, w, f64::abs);
    dh + dw
}

/// PSNR in dB for images with values in `[0, data_range]`; infinite for identical images.
pub fn psnr(a: &[f32], b: &[f32], data_range: f64) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64;
    psnr_of_mse(mse, data_range)
}

/// PSNR of a mean squared error `mse` at peak-to-peak `data_range`.
pub fn psnr_of_mse(mse: f64, data_range: f64) -> f64 {
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (data_range * data_range / mse).log10() }
}

/// Planar RGB in [-1, 1] (the networks' range) to [0, 1].
pub fn to_unit_range(planar: &[f32]) -> Vec<f32> {
    planar.iter().map(|v| ((v + 1.0) * 0.5).clamp(0.0, 1.0)).collect()
}

//! SSIM (Wang et al. 2004) as scikit-image's `structural_similarity` computes it by default,
//! which is what Artifact-Eraser's evaluation calls: a 7×7 uniform window, the sample
//! covariance (× 49/48), K1 = 0.01, K2 = 0.03, the 3-pixel border left out of the mean, and the
//! mean over channels.

const WINDOW: usize = 7;

/// Mean over every full `7×7` window of one `h×w` plane: `(h − 6) × (w − 6)` values, which are
/// exactly the positions scikit-image keeps after cropping its border.
fn box_valid(plane: &[f64], h: usize, w: usize) -> Vec<f64> {
    let (oh, ow) = (h + 1 - WINDOW, w + 1 - WINDOW);
    let mut rows = vec![0f64; h * ow];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = plane[y * w + x..y * w + x + WINDOW].iter().sum::<f64>() / WINDOW as f64;
        }
    }
    let mut out = vec![0f64; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..WINDOW).map(|k| rows[(y + k) * ow + x]).sum::<f64>() / WINDOW as f64;
        }
    }
    out
}

/// SSIM of two planar `C×H×W` images with values in `[0, data_range]` (scikit-image takes
/// 255 for 8-bit images); `None` when a side is shorter than the 7-pixel window.
pub fn ssim(a: &[f32], b: &[f32], c: usize, h: usize, w: usize, data_range: f64) -> Option<f64> {
    if h < WINDOW || w < WINDOW {
        return None;
    }
    let (c1, c2) = ((0.01 * data_range).powi(2), (0.03 * data_range).powi(2));
    let np = (WINDOW * WINDOW) as f64;
    let cov_norm = np / (np - 1.0);
    let n = h * w;
    let mut per_channel = 0f64;
    for ch in 0..c {
        let x: Vec<f64> = a[ch * n..(ch + 1) * n].iter().map(|v| *v as f64).collect();
        let y: Vec<f64> = b[ch * n..(ch + 1) * n].iter().map(|v| *v as f64).collect();
        let product = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<f64>>();
        let (ux, uy) = (box_valid(&x, h, w), box_valid(&y, h, w));
        let uxx = box_valid(&product(&x, &x), h, w);
        let uyy = box_valid(&product(&y, &y), h, w);
        let uxy = box_valid(&product(&x, &y), h, w);
        let mut sum = 0f64;
        for i in 0..ux.len() {
            let vx = cov_norm * (uxx[i] - ux[i] * ux[i]);
            let vy = cov_norm * (uyy[i] - uy[i] * uy[i]);
            let vxy = cov_norm * (uxy[i] - ux[i] * uy[i]);
            sum += ((2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2))
                / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
        }
        per_channel += sum / ux.len() as f64;
    }
    Some(per_channel / c as f64)
}

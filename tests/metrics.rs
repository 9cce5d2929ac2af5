//! Metrics against values known in closed form or by construction.

use unforge::metrics::{esnle, esnle_255, psnr, tv_artifact_eraser, tv_l1_sum};
use unforge::rng::SeededRng;

/// A smooth RGB image in [0, 1], `C×H×W`.
fn smooth(h: usize, w: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
                out.push(0.5 + 0.3 * ((3.0 * u + c as f32).sin() * (2.0 * v).cos()) * 0.8);
            }
        }
    }
    out
}

#[test]
fn esnle_recovers_gaussian_noise() {
    let (h, w) = (256, 128);
    for (sigma, seed) in [(5.0f32, 1), (10.0, 2), (20.0, 3)] {
        let mut rng = SeededRng::new(seed);
        let noisy: Vec<f32> = smooth(h, w).into_iter().map(|v| v + rng.normal() * sigma / 255.0).collect();
        let est = esnle(&noisy, 3, h, w).expect("an estimate") * 255.0;
        println!("ESNLE: σ {sigma} estimated {est:.3}");
        assert!((est - sigma as f64).abs() <= 0.1 * sigma as f64, "σ {sigma}: estimated {est:.3}");
    }
    // A clean smooth image has almost no noise; the reporting splits the width in two.
    let clean = esnle_255(&smooth(64, 64), 3, 64, 64, 2);
    assert_eq!(clean.len(), 2);
    assert!(clean.iter().all(|v| v.is_some_and(|v| v < 1.0)), "{clean:?}");
}

#[test]
fn tv_in_both_definitions_on_closed_forms() {
    let (c, h, w) = (3, 16, 9);
    // A horizontal ramp: every horizontal difference is 1/(W−1), no vertical ones.
    let ramp: Vec<f32> = (0..c * h * w).map(|i| (i % w) as f32 / (w - 1) as f32).collect();
    let step = 1.0 / (w - 1) as f64;
    assert!((tv_artifact_eraser(&ramp, 1, c, h, w) - 255.0 * step * step).abs() < 1e-9);
    assert!((tv_l1_sum(&ramp, c, h, w) - (c * h) as f64).abs() < 1e-5);
    // A checkerboard of 0/1: every difference is 1 in both directions.
    let board: Vec<f32> = (0..c * h * w).map(|i| (((i % w) + (i / w) % h) % 2) as f32).collect();
    assert!((tv_artifact_eraser(&board, 1, c, h, w) - 255.0 * 2.0).abs() < 1e-9);
    assert!((tv_l1_sum(&board, c, h, w) - (c * ((h - 1) * w + h * (w - 1))) as f64).abs() < 1e-6);
    // The batch mean of two images is the mean of their values.
    let both: Vec<f32> = ramp.iter().chain(&board).copied().collect();
    let mean = (tv_artifact_eraser(&ramp, 1, c, h, w) + tv_artifact_eraser(&board, 1, c, h, w)) / 2.0;
    assert!((tv_artifact_eraser(&both, 2, c, h, w) - mean).abs() < 1e-9);
}

#[test]
fn psnr_known_values() {
    let a = vec![0.5f32; 300];
    assert!(psnr(&a, &a, 1.0).is_infinite());
    let b: Vec<f32> = a.iter().map(|v| v + 0.1).collect();
    assert!((psnr(&a, &b, 1.0) - 20.0).abs() < 1e-4);
}

#[derive(serde::Deserialize)]
struct MetricFixture {
    channels: usize,
    height: usize,
    width: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    ssim: f64,
    psnr: f64,
}

/// scikit-image's values for two seeded 8-bit images (tools/fixtures/make_metric_fixtures.py).
#[test]
fn ssim_and_psnr_match_scikit_image() {
    let fx: MetricFixture = serde_json::from_str(include_str!("fixtures/metrics.json")).unwrap();
    let got = unforge::metrics::ssim(&fx.a, &fx.b, fx.channels, fx.height, fx.width, 1.0).unwrap();
    assert!((got - fx.ssim).abs() < 1e-6, "ssim {got} vs scikit-image {}", fx.ssim);
    let p = psnr(&fx.a, &fx.b, 1.0);
    assert!((p - fx.psnr).abs() < 1e-4, "psnr {p} vs scikit-image {}", fx.psnr);
}

#[test]
fn ssim_closed_forms() {
    let (h, w) = (16, 12);
    let img = smooth(h, w);
    assert!((unforge::metrics::ssim(&img, &img, 3, h, w, 1.0).unwrap() - 1.0).abs() < 1e-12);
    // Two flat images: no variance, so SSIM is the luminance term (2μaμb + C1)/(μa² + μb² + C1).
    let (ma, mb) = (0.3f32, 0.6f32);
    let (a, b) = (vec![ma; 3 * h * w], vec![mb; 3 * h * w]);
    let c1 = 0.01f64 * 0.01;
    let want = (2.0 * ma as f64 * mb as f64 + c1) / ((ma as f64).powi(2) + (mb as f64).powi(2) + c1);
    let got = unforge::metrics::ssim(&a, &b, 3, h, w, 1.0).unwrap();
    assert!((got - want).abs() < 1e-6, "flat images: {got} vs {want}");
    // Noise lowers it; too small an image has none.
    let mut rng = SeededRng::new(4);
    let noisy: Vec<f32> = img.iter().map(|v| v + 0.1 * rng.normal()).collect();
    assert!(unforge::metrics::ssim(&img, &noisy, 3, h, w, 1.0).unwrap() < 0.9);
    assert_eq!(unforge::metrics::ssim(&img[..3 * 36], &img[..3 * 36], 3, 6, 6, 1.0), None);
}

#[test]
fn auroc_known_values() {
    use unforge::metrics::{auroc, downsample_mask};
    // Perfect, reversed, chance-by-ties, and a hand count: positives {0.8, 0.4} vs negatives
    // {0.6, 0.2}: pairs won 1 + 1 + 0 + 1 = 3 of 4.
    assert_eq!(auroc(&[0.9, 0.8, 0.1, 0.2], &[true, true, false, false]), Some(1.0));
    assert_eq!(auroc(&[0.1, 0.2, 0.9, 0.8], &[true, true, false, false]), Some(0.0));
    assert_eq!(auroc(&[0.5; 4], &[true, false, true, false]), Some(0.5));
    assert_eq!(auroc(&[0.8, 0.6, 0.4, 0.2], &[true, false, true, false]), Some(0.75));
    assert_eq!(auroc(&[0.3, 0.4], &[true, true]), None);
    // A 4×4 mask with one altered pixel in its top-right 2×2 block marks that block at 2×2.
    let mut m = vec![false; 16];
    m[3] = true;
    assert_eq!(downsample_mask(&m, 4, 2), vec![false, true, false, false]);
}

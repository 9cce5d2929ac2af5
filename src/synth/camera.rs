//! The camera every synthetic image goes through after it is painted (and forged): lens
//! blur, sensor noise, and JPEG-like block quantisation. Real and fake images of one seed share
//! the camera's noise, so their difference is the forgery alone.

use super::face::Canvas;
use crate::rng::SeededRng;

/// Separable Gaussian blur with standard deviation `sigma` pixels (none below 0.05), clamped
/// at the borders.
pub fn gaussian_blur(img: &Canvas, sigma: f32) -> Canvas {
    if sigma < 0.05 {
        return img.clone();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let mut kernel: Vec<f32> = (-radius..=radius).map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let (w, h) = (img.width as isize, img.height as isize);
    let pass = |src: &[[f32; 3]], horizontal: bool| -> Vec<[f32; 3]> {
        let mut out = vec![[0f32; 3]; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f32; 3];
                for (k, d) in kernel.iter().zip(-radius..=radius) {
                    let (sx, sy) = if horizontal { ((x + d).clamp(0, w - 1), y) } else { (x, (y + d).clamp(0, h - 1)) };
                    let p = src[(sy * w + sx) as usize];
                    for c in 0..3 {
                        acc[c] += k * p[c];
                    }
                }
                out[(y * w + x) as usize] = acc;
            }
        }
        out
    };
    let rgb = pass(&pass(&img.rgb, true), false);
    Canvas { width: img.width, height: img.height, rgb }
}

/// 8×8 DCT-II basis: `BASIS[u][x]`.
fn dct_basis() -> [[f32; 8]; 8] {
    let mut b = [[0f32; 8]; 8];
    for (u, row) in b.iter_mut().enumerate() {
        let scale = if u == 0 { (1.0f32 / 8.0).sqrt() } else { (2.0f32 / 8.0).sqrt() };
        for (x, v) in row.iter_mut().enumerate() {
            *v = scale * ((2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / 16.0).cos();
        }
    }
    b
}

/// JPEG-like compression: each channel's 8×8 blocks in the DCT domain, coefficient (u, v)
/// rounded to a multiple of `step · (1 + u + v)`. `step` 0 leaves the image as it is.
pub fn block_quantise(img: &Canvas, step: f32) -> Canvas {
    if step <= 0.0 {
        return img.clone();
    }
    let b = dct_basis();
    let mut out = img.clone();
    let (w, h) = (img.width, img.height);
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for c in 0..3 {
                let mut block = [[0f32; 8]; 8];
                for (y, row) in block.iter_mut().enumerate() {
                    for (x, v) in row.iter_mut().enumerate() {
                        *v = img.rgb[(by + y).min(h - 1) * w + (bx + x).min(w - 1)][c];
                    }
                }
                let mut coef = [[0f32; 8]; 8];
                for u in 0..8 {
                    for v in 0..8 {
                        let mut s = 0.0;
                        for y in 0..8 {
                            for x in 0..8 {
                                s += b[u][y] * b[v][x] * block[y][x];
                            }
                        }
                        let q = step * (1 + u + v) as f32;
                        coef[u][v] = (s / q).round() * q;
                    }
                }
                for y in 0..8 {
                    for x in 0..8 {
                        if by + y >= h || bx + x >= w {
                            continue;
                        }
                        let mut s = 0.0;
                        for u in 0..8 {
                            for v in 0..8 {
                                s += b[u][y] * b[v][x] * coef[u][v];
                            }
                        }
                        out.rgb[(by + y) * w + bx + x][c] = s;
                    }
                }
            }
        }
    }
    out
}

/// Blur, then noise drawn from `seed`, then quantisation.
pub fn capture(img: &Canvas, blur: f32, noise: f32, quantisation: f32, seed: u64) -> Canvas {
    let mut out = gaussian_blur(img, blur);
    let mut rng = SeededRng::new(seed ^ 0x00CA_3E7A);
    for p in out.rgb.iter_mut() {
        for v in p.iter_mut() {
            *v = (*v + noise * rng.normal()).clamp(0.0, 1.0);
        }
    }
    block_quantise(&out, quantisation)
}

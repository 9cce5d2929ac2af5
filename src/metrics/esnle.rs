//! ESNLE: noise level from the eigenvalues of the patch covariance (Chen, Zhu & Heng,
//! ICCV 2015), as Artifact-Eraser's `noise_eval/ESNLE.py` computes it, quirks included.

/// Eigenvalues of a symmetric matrix (row-major `n×n`), ascending, by cyclic Jacobi rotations.
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-22 * (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>().max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (cs, sn) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = cs * akp - sn * akq;
                    a[k * n + q] = sn * akp + cs * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = cs * apk - sn * aqk;
                    a[q * n + k] = sn * apk + cs * aqk;
                }
            }
        }
    }
    let mut eig: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    eig.sort_by(f64::total_cmp);
    eig
}

/// σ of an image (planar `C×H×W`, values in [0, 1]) with 8×8 patches at stride 3, in [0, 1]
/// units; `None` where the τ search finds no balance (the original returns `None` too).
pub fn esnle(image: &[f32], c: usize, h: usize, w: usize) -> Option<f64> {
    const P: usize = 8;
    const STRIDE: usize = 3;
    if h < P || w < P {
        return None;
    }
    let (nh, nw) = ((h - P) / STRIDE + 1, (w - P) / STRIDE + 1);
    let (d, n) = (c * P * P, nh * nw);
    // X: d × n, row ch·64 + ii·8 + jj, column r·num_W + c.
    let mut x = vec![0f64; d * n];
    for ch in 0..c {
        for ii in 0..P {
            for jj in 0..P {
                let row = ch * P * P + ii * P + jj;
                for r in 0..nh {
                    for cc in 0..nw {
                        x[row * n + r * nw + cc] = image[ch * h * w + (STRIDE * r + ii) * w + STRIDE * cc + jj] as f64;
                    }
                }
            }
        }
    }
    for row in x.chunks_mut(n) {
        let mean = row.iter().sum::<f64>() / n as f64;
        row.iter_mut().for_each(|v| *v -= mean);
    }
    // Population covariance (÷ n).
    let mut sigma = vec![0f64; d * d];
    for i in 0..d {
        for j in i..d {
            let v =
                x[i * n..(i + 1) * n].iter().zip(&x[j * n..(j + 1) * n]).map(|(a, b)| a * b).sum::<f64>() / n as f64;
            sigma[i * d + j] = v;
            sigma[j * d + i] = v;
        }
    }
    let eig = symmetric_eigenvalues(sigma, d);
    // The largest eigenvalue is left out even at the first step (the original's slice λ[:-1]).
    for m in (1..d).rev() {
        let s = &eig[..m];
        let tau = s.iter().sum::<f64>() / m as f64;
        let above = s.iter().filter(|&&l| l > tau).count();
        let below = s.iter().filter(|&&l| l < tau).count();
        if above == below {
            return Some(tau.max(0.0).sqrt());
        }
    }
    None
}

/// Artifact-Eraser's reporting: the image split into `folds` equal vertical strips, ESNLE on each,
/// × 255 (8-bit units). One value per strip.
pub fn esnle_255(image: &[f32], c: usize, h: usize, w: usize, folds: usize) -> Vec<Option<f64>> {
    let each = w / folds.max(1);
    (0..folds)
        .map(|f| {
            let mut strip = Vec::with_capacity(c * h * each);
            for ch in 0..c {
                for y in 0..h {
                    let start = ch * h * w + y * w + f * each;
                    strip.extend_from_slice(&image[start..start + each]);
                }
            }
            esnle(&strip, c, h, each).map(|s| s * 255.0)
        })
        .collect()
}

//! Forgery operators that leave the traces detectors learn from real deepfakes. Each one
//! changes a rendered face in a known way; the camera runs afterwards on the real and the fake
//! alike, so the pixels that differ are exactly the forgery's.

use serde::{Deserialize, Serialize};

use super::camera::gaussian_blur;
use super::face::{Canvas, FaceParams};
use crate::rng::SeededRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeryKind {
    /// The inner face of another identity, with a visible blending seam and a colour and
    /// illumination mismatch.
    FaceSwap,
    /// One eye larger, narrower or with another iris colour than the other.
    AsymmetricEyes,
    /// One eyebrow's thickness changes irregularly along its length.
    IrregularBrows,
    /// Upsampling traces in the face: a checkerboard or a high-frequency spectral peak.
    GanArtifacts,
    /// The face region at a lower resolution than the rest (blurred and blended).
    BlurMismatch,
    /// A local shift of the colour scheme in part of the face.
    ColourShift,
}

impl ForgeryKind {
    pub const ALL: [ForgeryKind; 6] = [
        ForgeryKind::FaceSwap,
        ForgeryKind::AsymmetricEyes,
        ForgeryKind::IrregularBrows,
        ForgeryKind::GanArtifacts,
        ForgeryKind::BlurMismatch,
        ForgeryKind::ColourShift,
    ];

    /// The snake-case name `samples.json` uses.
    pub fn name(self) -> &'static str {
        match self {
            ForgeryKind::FaceSwap => "face_swap",
            ForgeryKind::AsymmetricEyes => "asymmetric_eyes",
            ForgeryKind::IrregularBrows => "irregular_brows",
            ForgeryKind::GanArtifacts => "gan_artifacts",
            ForgeryKind::BlurMismatch => "blur_mismatch",
            ForgeryKind::ColourShift => "colour_shift",
        }
    }
}

/// Per-pixel soft weight over the image: `f(face point)` sampled at every pixel.
fn weights(params: &FaceParams, size: usize, f: impl Fn(super::face::FacePoint) -> f32) -> Vec<f32> {
    (0..size * size).map(|i| f(params.to_face(i % size, i / size, size))).collect()
}

fn mix(base: &Canvas, other: &Canvas, w: &[f32]) -> Canvas {
    let mut out = base.clone();
    for (i, &a) in w.iter().enumerate() {
        out.blend(i, other.rgb[i], a);
    }
    out
}

/// The forged version of the face `params` renders as `real` (before the camera).
pub fn forge(kind: ForgeryKind, params: &FaceParams, real: &Canvas, seed: u64) -> Canvas {
    let mut r = SeededRng::new(seed ^ 0xF0_96E5);
    let u = |r: &mut SeededRng, lo: f32, hi: f32| lo + (hi - lo) * r.uniform();
    let size = real.width;
    match kind {
        ForgeryKind::FaceSwap => {
            // The donor is drawn aligned to the target, as a face-swap pipeline aligns it.
            let mut donor = FaceParams::sample(seed ^ 0xD0_7012);
            donor.center = params.center;
            donor.roll = params.roll;
            donor.scale = params.scale;
            donor.face_rx = params.face_rx;
            donor.face_ry = params.face_ry;
            donor.light = params.light;
            let gain = [u(&mut r, 0.85, 1.15), u(&mut r, 0.85, 1.15), u(&mut r, 0.85, 1.15)];
            let mut swapped = donor.render(size);
            swapped.rgb.iter_mut().for_each(|p| (0..3).for_each(|c| p[c] = (p[c] * gain[c]).min(1.0)));
            // A seam that wobbles around the inner face and is feathered unevenly. (6.28, not τ:
            // the world's seeds were drawn with it, and every sample reproduces with it.)
            #[allow(clippy::approx_constant)]
            let (k, phase, wobble, feather) =
                (r.range(3, 7) as f32, u(&mut r, 0.0, 6.28), u(&mut r, 0.03, 0.07), u(&mut r, 0.05, 0.15));
            let w = weights(params, size, |p| {
                let angle = p.y.atan2(p.x);
                let q = super::face::FacePoint { x: p.x * (1.0 + wobble * (k * angle + phase).sin()), y: p.y };
                params.inner_face(q, feather)
            });
            mix(real, &swapped, &w)
        }
        ForgeryKind::AsymmetricEyes => {
            let mut p = params.clone();
            let side = r.range(0, 2) as usize;
            match r.range(0, 3) {
                0 => p.eyes[side].size *= u(&mut r, 1.25, 1.45),
                1 => p.eyes[side].openness *= u(&mut r, 0.5, 0.7),
                _ => p.eyes[side].iris = [u(&mut r, 0.3, 0.7), u(&mut r, 0.1, 0.3), u(&mut r, 0.3, 0.6)],
            }
            p.render(size)
        }
        ForgeryKind::IrregularBrows => {
            let mut p = params.clone();
            let side = r.range(0, 2) as usize;
            let t = p.brows[side].thickness[1];
            p.brows[side].thickness = [t * u(&mut r, 1.8, 2.6), t * u(&mut r, 0.35, 0.6), t * u(&mut r, 1.6, 2.4)];
            p.render(size)
        }
        ForgeryKind::GanArtifacts => {
            let amp = u(&mut r, 0.035, 0.07);
            let checker = r.uniform() < 0.5;
            let (fx, fy) = (u(&mut r, 0.22, 0.33), u(&mut r, 0.22, 0.33));
            let w = weights(params, size, |p| params.inner_face(p, 0.2));
            let mut out = real.clone();
            for (i, &a) in w.iter().enumerate() {
                let (x, y) = ((i % size) as f32, (i / size) as f32);
                let pattern = if checker {
                    if (i % size + i / size).is_multiple_of(2) { 1.0 } else { -1.0 }
                } else {
                    (std::f32::consts::TAU * (fx * x + fy * y)).cos()
                };
                out.rgb[i].iter_mut().for_each(|v| *v = (*v + a * amp * pattern).clamp(0.0, 1.0));
            }
            out
        }
        ForgeryKind::BlurMismatch => {
            let blurred = gaussian_blur(real, u(&mut r, 1.2, 2.2));
            let w = weights(params, size, |p| params.inner_face(p, 0.12));
            mix(real, &blurred, &w)
        }
        ForgeryKind::ColourShift => {
            let shift = [u(&mut r, -0.12, 0.12), u(&mut r, -0.12, 0.12), u(&mut r, -0.12, 0.12)];
            let (cx, cy, rx, ry) =
                (u(&mut r, -0.5, 0.5), u(&mut r, -0.4, 0.6), u(&mut r, 0.25, 0.5), u(&mut r, 0.2, 0.45));
            let w = weights(params, size, |p| {
                let d = (((p.x - cx) / rx).powi(2) + ((p.y - cy) / ry).powi(2)).sqrt() - 1.0;
                (0.5 - d / 0.3).clamp(0.0, 1.0) * (0.5 - params.face_sdf(p) / 0.05).clamp(0.0, 1.0)
            });
            let mut out = real.clone();
            for (i, &a) in w.iter().enumerate() {
                (0..3).for_each(|c| out.rgb[i][c] = (out.rgb[i][c] + a * shift[c]).clamp(0.0, 1.0));
            }
            out
        }
    }
}

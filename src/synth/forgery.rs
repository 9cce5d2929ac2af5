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

/// How far each forgery moves a face from its pristine render: the ranges its random
/// parameters are drawn from (`[low, high]`, uniform). A parameter of the world rather than
/// constants in the operators, because whether a forgery can be seen at all depends on the
/// resolution: at 64 px an eye is a few pixels wide, and a change that shows at 256 px is lost
/// in the camera's noise. [`ForgeryStrength::VISIBLE`], the default, is set so that each kind
/// shows in the 64 px sample grid, but for what no strength reaches (a dark brow under a fringe
/// of the same hair), and is the default zoo's world; [`ForgeryStrength::SUBTLE`] is the
/// world's first strengths, kept so that zoos trained on them keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForgeryStrength {
    /// Face swap: the donor's gain in each colour channel.
    pub swap_colour_gain: [f32; 2],
    /// Face swap: the seam's radial wobble, relative to the inner face's radius.
    pub swap_seam_wobble: [f32; 2],
    /// Asymmetric eyes: one eye's size factor (one forgery in three).
    pub eye_size: [f32; 2],
    /// Asymmetric eyes: one eye's openness factor (one forgery in three).
    pub eye_openness: [f32; 2],
    /// Asymmetric eyes, the last third: the iris colour is redrawn and the eye's size scaled
    /// by this factor (an iris alone is two or three pixels at 64 px, lost at any colour).
    #[serde(default = "unit_range")]
    pub iris_eye_size: [f32; 2],
    /// Irregular brows: one brow's thickness factors at its inner end, middle and outer end.
    pub brow_inner: [f32; 2],
    pub brow_middle: [f32; 2],
    pub brow_outer: [f32; 2],
    /// Upsampling traces: the checkerboard's or spectral peak's amplitude in [0, 1] pixel units.
    pub upsampling_amplitude: [f32; 2],
    /// Blur mismatch: the Gaussian σ (pixels at the world's size) of the blended inner face.
    pub blur_sigma: [f32; 2],
    /// Colour shift: each channel's shift is drawn from `±colour_shift`…
    pub colour_shift: f32,
    /// …and scaled up, when its largest channel is smaller, to this magnitude (0: as drawn).
    pub colour_shift_min: f32,
}

impl ForgeryStrength {
    /// The world's first strengths (the default zoo's until 2026-12-02, and what a manifest
    /// without `forgeries` means): at 64 px the eye, brow and colour forgeries are close to
    /// invisible (the model card's detection by kind).
    pub const SUBTLE: ForgeryStrength = ForgeryStrength {
        swap_colour_gain: [0.85, 1.15],
        swap_seam_wobble: [0.03, 0.07],
        eye_size: [1.25, 1.45],
        eye_openness: [0.5, 0.7],
        iris_eye_size: [1.0, 1.0],
        brow_inner: [1.8, 2.6],
        brow_middle: [0.35, 0.6],
        brow_outer: [1.6, 2.4],
        upsampling_amplitude: [0.035, 0.07],
        blur_sigma: [1.2, 2.2],
        colour_shift: 0.12,
        colour_shift_min: 0.0,
    };

    /// Every kind visible in the 64 px sample grid but for dark brows under a fringe of the same
    /// hair (the model card's probe: raw-image AUC 0.95 to 1.00 by kind at 2500 steps); the
    /// default, and the default zoo's world.
    pub const VISIBLE: ForgeryStrength = ForgeryStrength {
        swap_colour_gain: [0.75, 1.25],
        swap_seam_wobble: [0.06, 0.12],
        eye_size: [1.8, 2.2],
        eye_openness: [0.15, 0.3],
        iris_eye_size: [1.5, 1.8],
        brow_inner: [3.5, 4.5],
        brow_middle: [0.0, 0.15],
        brow_outer: [3.0, 4.0],
        upsampling_amplitude: [0.12, 0.2],
        blur_sigma: [1.6, 2.6],
        colour_shift: 0.3,
        colour_shift_min: 0.22,
    };

    /// The presets by name, as the CLI and the manifests spell them.
    pub const PRESETS: [(&'static str, ForgeryStrength); 2] = [("subtle", Self::SUBTLE), ("visible", Self::VISIBLE)];

    pub fn preset(name: &str) -> crate::error::Result<ForgeryStrength> {
        Self::PRESETS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
            crate::error::Error::config(format!(
                "unknown forgery strength `{name}` (use {})",
                Self::PRESETS.map(|(n, _)| n).join(" or ")
            ))
        })
    }

    /// The preset's name, when it is one.
    pub fn name(&self) -> Option<&'static str> {
        Self::PRESETS.iter().find(|(_, s)| s == self).map(|(n, _)| *n)
    }
}

impl Default for ForgeryStrength {
    fn default() -> Self {
        Self::VISIBLE
    }
}

fn unit_range() -> [f32; 2] {
    [1.0, 1.0]
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

/// The forged version of the face `params` renders as `real` (before the camera), at
/// `strength`.
pub fn forge(kind: ForgeryKind, params: &FaceParams, real: &Canvas, seed: u64, strength: &ForgeryStrength) -> Canvas {
    let mut r = SeededRng::new(seed ^ 0xF0_96E5);
    let u = |r: &mut SeededRng, lo: f32, hi: f32| lo + (hi - lo) * r.uniform();
    let within = |r: &mut SeededRng, [lo, hi]: [f32; 2]| u(r, lo, hi);
    let s = strength;
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
            let g = s.swap_colour_gain;
            let gain = [within(&mut r, g), within(&mut r, g), within(&mut r, g)];
            let mut swapped = donor.render(size);
            swapped.rgb.iter_mut().for_each(|p| (0..3).for_each(|c| p[c] = (p[c] * gain[c]).min(1.0)));
            // A seam that wobbles around the inner face and is feathered unevenly. (6.28, not τ:
            // the world's seeds were drawn with it, and every sample reproduces with it.)
            #[allow(clippy::approx_constant)]
            let (k, phase, wobble, feather) =
                (r.range(3, 7) as f32, u(&mut r, 0.0, 6.28), within(&mut r, s.swap_seam_wobble), u(&mut r, 0.05, 0.15));
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
                0 => p.eyes[side].size *= within(&mut r, s.eye_size),
                1 => p.eyes[side].openness *= within(&mut r, s.eye_openness),
                _ => {
                    p.eyes[side].iris = [u(&mut r, 0.3, 0.7), u(&mut r, 0.1, 0.3), u(&mut r, 0.3, 0.6)];
                    // Drawn after the colour, so that a factor of 1 leaves the subtle world's bits.
                    p.eyes[side].size *= within(&mut r, s.iris_eye_size);
                }
            }
            p.render(size)
        }
        ForgeryKind::IrregularBrows => {
            let mut p = params.clone();
            let side = r.range(0, 2) as usize;
            let t = p.brows[side].thickness[1];
            p.brows[side].thickness =
                [t * within(&mut r, s.brow_inner), t * within(&mut r, s.brow_middle), t * within(&mut r, s.brow_outer)];
            p.render(size)
        }
        ForgeryKind::GanArtifacts => {
            let amp = within(&mut r, s.upsampling_amplitude);
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
            let blurred = gaussian_blur(real, within(&mut r, s.blur_sigma));
            let w = weights(params, size, |p| params.inner_face(p, 0.12));
            mix(real, &blurred, &w)
        }
        ForgeryKind::ColourShift => {
            let c = s.colour_shift;
            let mut shift = [u(&mut r, -c, c), u(&mut r, -c, c), u(&mut r, -c, c)];
            let largest = shift.iter().fold(0f32, |m, v| m.max(v.abs()));
            if largest > 0.0 && largest < s.colour_shift_min {
                shift.iter_mut().for_each(|v| *v *= s.colour_shift_min / largest);
            }
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

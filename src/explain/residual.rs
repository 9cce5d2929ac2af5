//! Residual maps: counterfactual − reconstruction, as a signed colour image and as a
//! magnitude heat map. Both images come out of the same generator, so inversion error
//! (input − reconstruction) never shows up here as an artifact.

use crate::image::RgbaImage;

/// The per-pixel difference of two planar RGB images in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualMap {
    pub width: usize,
    pub height: usize,
    /// Planar RGB difference, `after − before`.
    pub diff: Vec<f32>,
}

/// Stops of the inferno colormap (perceptually uniform, dark to bright).
const INFERNO: [[f32; 3]; 5] =
    [[0.001, 0.000, 0.014], [0.258, 0.039, 0.406], [0.578, 0.148, 0.404], [0.865, 0.317, 0.226], [0.988, 1.000, 0.644]];

pub(crate) fn inferno(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * (INFERNO.len() - 1) as f32;
    let i = (t.floor() as usize).min(INFERNO.len() - 2);
    let f = t - i as f32;
    let mut rgb = [0u8; 3];
    for c in 0..3 {
        rgb[c] = ((INFERNO[i][c] * (1.0 - f) + INFERNO[i + 1][c] * f) * 255.0).round() as u8;
    }
    rgb
}

impl ResidualMap {
    pub fn new(before: &[f32], after: &[f32], width: usize, height: usize) -> Self {
        let diff = after.iter().zip(before).map(|(a, b)| a - b).collect();
        Self { width, height, diff }
    }

    /// From two 8-bit images of one size (what the page holds), `after − before`.
    pub fn from_rgba(before: &RgbaImage, after: &RgbaImage) -> crate::error::Result<Self> {
        if (before.width, before.height) != (after.width, after.height) {
            return Err(crate::error::Error::config(format!(
                "residual of a {}×{} and a {}×{} image",
                before.width, before.height, after.width, after.height
            )));
        }
        Ok(Self::new(&before.to_planar(), &after.to_planar(), before.width, before.height))
    }

    fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// Per-pixel L2 norm over the three channels, in [-1, 1] units.
    pub fn magnitude(&self) -> Vec<f32> {
        let n = self.pixels();
        (0..n).map(|i| (0..3).map(|c| self.diff[c * n + i].powi(2)).sum::<f32>().sqrt()).collect()
    }

    /// Mid-grey plus the signed difference × `gain`: where colour moved, and which way.
    pub fn signed_rgba(&self, gain: f32) -> RgbaImage {
        let n = self.pixels();
        let mut data = vec![255u8; n * 4];
        for i in 0..n {
            for c in 0..3 {
                let v = 0.5 + 0.5 * gain * self.diff[c * n + i];
                data[i * 4 + c] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        RgbaImage { width: self.width, height: self.height, data }
    }

    /// The magnitude on the inferno colormap, scaled so `1 / gain` maps to the top.
    pub fn magnitude_rgba(&self, gain: f32) -> RgbaImage {
        let mag = self.magnitude();
        let mut data = Vec::with_capacity(mag.len() * 4);
        for m in mag {
            let [r, g, b] = inferno(m * gain);
            data.extend_from_slice(&[r, g, b, 255]);
        }
        RgbaImage { width: self.width, height: self.height, data }
    }

    /// A gain that puts the 99th percentile of the magnitude at the top of the colormap.
    pub fn auto_gain(&self) -> f32 {
        let mut mag = self.magnitude();
        mag.sort_by(|a, b| a.total_cmp(b));
        let p99 = mag.get(mag.len() * 99 / 100).copied().unwrap_or(0.0);
        if p99 > 1e-6 { 1.0 / p99 } else { 1.0 }
    }
}

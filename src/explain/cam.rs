//! Class activation maps of a detector at any of its layers (the last convolutional block by
//! default): Grad-CAM, Grad-CAM++ and LayerCAM, upsampled to the image and normalised to [0, 1].

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::image::RgbaImage;
use crate::networks::Detector;
use crate::readback::read_vec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CamMethod {
    /// Channel weights = spatial mean of ∂y_c/∂A.
    GradCam,
    /// Channel weights from second- and third-order terms (Chattopadhay et al.).
    GradCamPlusPlus,
    /// Element-wise relu(∂y_c/∂A)·A (Jiang et al.).
    LayerCam,
}

/// A map in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Cam {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

/// Where and what a CAM looks at: the class (1 = fake) and the layer, by name
/// (`Detector::layer_names`); `None` is the last convolutional block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CamTarget {
    pub class: usize,
    pub layer: Option<String>,
}

impl CamTarget {
    pub fn fake() -> Self {
        Self { class: 1, layer: None }
    }

    fn layer_index(&self, detector: &Detector) -> Result<usize> {
        match &self.layer {
            Some(name) => detector.layer_index(name),
            None => Ok(detector.layer_count() - 1),
        }
    }
}

/// The CAM of `target` for `image` (`[1, 3, S, S]` in [-1, 1]) at the image's size.
pub async fn class_activation(
    detector: &Detector,
    image: Tensor<4>,
    target: &CamTarget,
    method: CamMethod,
) -> Result<Cam> {
    let [_, _, size, _] = image.dims();
    let (map, h, w) = feature_map(detector, image, target, method).await?;
    Ok(normalise(upsample_bilinear(&map, w, h, size, size), size, size))
}

/// The raw (non-negative, unnormalised) map at the layer's resolution, `(values, h, w)`.
pub async fn feature_map(
    detector: &Detector,
    image: Tensor<4>,
    target: &CamTarget,
    method: CamMethod,
) -> Result<(Vec<f32>, usize, usize)> {
    let layer = target.layer_index(detector)?;
    let features = detector.activation(image, layer).detach().autodiff().require_grad();
    let logits = detector.logits_from(features.clone(), layer);
    let classes = logits.dims()[1];
    if target.class >= classes {
        return Err(crate::error::Error::config(format!(
            "CAM class {} is outside the detector's {classes} classes",
            target.class
        )));
    }
    let score = logits.narrow(1, target.class, 1).sum();
    let grads = score.backward();
    let grad = features.grad(&grads).expect("features require grad");
    let [_, c, h, w] = grad.dims();
    let (a, g) = (read_vec(features.without_autodiff()).await?, read_vec(grad).await?);
    let n = h * w;
    let mut map = vec![0f32; n];
    for k in 0..c {
        let (ak, gk) = (&a[k * n..(k + 1) * n], &g[k * n..(k + 1) * n]);
        match method {
            CamMethod::GradCam => {
                let weight = gk.iter().sum::<f32>() / n as f32;
                map.iter_mut().zip(ak).for_each(|(m, a)| *m += weight * a);
            }
            CamMethod::GradCamPlusPlus => {
                let sum_a: f32 = ak.iter().sum();
                let weight: f32 = gk
                    .iter()
                    .map(|&g| {
                        let (g2, g3) = (g * g, g * g * g);
                        let denom = 2.0 * g2 + sum_a * g3;
                        let alpha = if denom != 0.0 { g2 / denom } else { 0.0 };
                        alpha * g.max(0.0)
                    })
                    .sum();
                map.iter_mut().zip(ak).for_each(|(m, a)| *m += weight * a);
            }
            CamMethod::LayerCam => {
                map.iter_mut().zip(ak.iter().zip(gk)).for_each(|(m, (a, g))| *m += g.max(0.0) * a);
            }
        }
    }
    map.iter_mut().for_each(|v| *v = v.max(0.0));
    Ok((map, h, w))
}

fn normalise(mut values: Vec<f32>, width: usize, height: usize) -> Cam {
    let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = hi - lo;
    values.iter_mut().for_each(|v| *v = if span > 0.0 { (*v - lo) / span } else { 0.0 });
    Cam { width, height, values }
}

/// Bilinear resampling with half-pixel centres (`align_corners = false`), on the host.
fn upsample_bilinear(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let sample = |x: f32, y: f32| {
        let x = x.clamp(0.0, (sw - 1) as f32);
        let y = y.clamp(0.0, (sh - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let top = src[y0 * sw + x0] * (1.0 - fx) + src[y0 * sw + x1] * fx;
        let bottom = src[y1 * sw + x0] * (1.0 - fx) + src[y1 * sw + x1] * fx;
        top * (1.0 - fy) + bottom * fy
    };
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        for x in 0..dw {
            let sx = (x as f32 + 0.5) * sw as f32 / dw as f32 - 0.5;
            let sy = (y as f32 + 0.5) * sh as f32 / dh as f32 - 0.5;
            out.push(sample(sx, sy));
        }
    }
    out
}

impl Cam {
    /// The map alone on the inferno colormap, opaque (the page blends it with its own opacity).
    pub fn heat_rgba(&self) -> RgbaImage {
        let mut data = Vec::with_capacity(self.values.len() * 4);
        for v in &self.values {
            data.extend_from_slice(&super::residual::inferno(*v));
            data.push(255);
        }
        RgbaImage { width: self.width, height: self.height, data }
    }

    /// The map on the inferno colormap, blended over `image` with `opacity`.
    pub fn overlay(&self, image: &RgbaImage, opacity: f32) -> RgbaImage {
        let image = image.resize(self.width, self.height);
        let heat = self.heat_rgba();
        let data = image
            .data
            .iter()
            .zip(&heat.data)
            .enumerate()
            .map(
                |(i, (&base, &h))| {
                    if i % 4 == 3 { base } else { (base as f32 * (1.0 - opacity) + h as f32 * opacity).round() as u8 }
                },
            )
            .collect();
        RgbaImage { width: self.width, height: self.height, data }
    }
}

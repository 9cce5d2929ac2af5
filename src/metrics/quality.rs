//! Image quality of a changed image against its reference (Table 1): the counterfactual
//! against the reconstruction, a pixel attack's output against the input, or a reconstruction
//! against the input (inversion fidelity).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::networks::arcface::ArcFace;
use crate::networks::lpips::Lpips;
use crate::readback::{read_planar, read_vec};

use super::{esnle_255, psnr, ssim, to_unit_range, tv_artifact_eraser, tv_l1_sum};

/// The networks behind LPIPS and ID (the metrics and the search's regularisers), when a zoo
/// has them.
#[derive(Clone, Copy, Default)]
pub struct QualityNetworks<'a> {
    pub perceptual: Option<&'a Lpips>,
    pub identity: Option<&'a ArcFace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub psnr_db: f64,
    /// scikit-image SSIM on the 8-bit images; `None` below 7 px.
    pub ssim: Option<f64>,
    /// Artifact-Eraser's TV (squared, count-normalised, × 255) of the reference and the change.
    pub tv_reference: f64,
    pub tv_changed: f64,
    /// torchmetrics' TV (L1 sum over C, H, W, on [0, 1]) of both.
    pub tv_l1_reference: f64,
    pub tv_l1_changed: f64,
    /// ESNLE σ in 8-bit units (one strip, the whole image); `None` when none is found.
    pub esnle_reference: Option<f64>,
    pub esnle_changed: Option<f64>,
    /// LPIPS-alex between the two, when the zoo has a perceptual network.
    pub lpips: Option<f64>,
    /// ArcFace cosine similarity (e4e crop), when the zoo has an identity network.
    pub id_similarity: Option<f64>,
}

impl Quality {
    /// The network-free metrics of two planar RGB images in [-1, 1].
    pub fn measure(reference: &[f32], changed: &[f32], size: usize) -> Self {
        let (a, b) = (to_unit_range(reference), to_unit_range(changed));
        let eight_bit = |v: &[f32]| v.iter().map(|x| (x * 255.0).round() / 255.0).collect::<Vec<f32>>();
        Self {
            psnr_db: psnr(&a, &b, 1.0),
            ssim: ssim(&eight_bit(&a), &eight_bit(&b), 3, size, size, 1.0),
            tv_reference: tv_artifact_eraser(&a, 1, 3, size, size),
            tv_changed: tv_artifact_eraser(&b, 1, 3, size, size),
            tv_l1_reference: tv_l1_sum(&a, 3, size, size),
            tv_l1_changed: tv_l1_sum(&b, 3, size, size),
            esnle_reference: esnle_255(&a, 3, size, size, 1)[0],
            esnle_changed: esnle_255(&b, 3, size, size, 1)[0],
            lpips: None,
            id_similarity: None,
        }
    }

    /// Every metric of `changed` against `reference` (`[1, 3, S, S]` in [-1, 1]); LPIPS and ID
    /// where `networks` has them.
    pub async fn measure_with(networks: QualityNetworks<'_>, reference: Tensor<4>, changed: Tensor<4>) -> Result<Self> {
        let size = reference.dims()[2];
        let lpips = match networks.perceptual {
            Some(net) => Some(read_vec(net.forward(reference.clone(), changed.clone())).await?[0] as f64),
            None => None,
        };
        let id_similarity = match networks.identity {
            Some(net) => Some(read_vec(net.similarity(reference.clone(), changed.clone())).await?[0] as f64),
            None => None,
        };
        let (a, b) = (read_planar(reference).await?.remove(0), read_planar(changed).await?.remove(0));
        Ok(Self { lpips, id_similarity, ..Self::measure(&a, &b, size) })
    }
}

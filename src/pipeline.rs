//! The method end to end: invert a face into W+, search the latent until the detector calls
//! the regenerated face real, and return what changed. The CLI and the browser binding both
//! drive this one function.

use burn::tensor::{Device, Tensor};
use serde::Serialize;

use crate::error::Result;
use crate::explain::ResidualMap;
use crate::image::RgbaImage;
use crate::search::{read_vec, LatentSearch, RowMask, SearchConfig, StepReport};
use crate::zoo::Zoo;

/// An image's place in W+ and the generator's rendering of it.
pub struct Inversion {
    pub latent: Tensor<3>,
    pub reconstruction: Tensor<4>,
}

impl Zoo {
    /// e4e inversion: the encoder at its input size, then the generator.
    pub fn invert(&self, image: &RgbaImage, device: &Device) -> Inversion {
        let x = image.to_tensor(self.encoder_size, device);
        let latent = self.encoder.forward(x);
        let reconstruction = self.generator.synthesize(latent.clone());
        Inversion { latent, reconstruction }
    }
}

/// Reads `[B, 3, H, W]` images in [-1, 1] back as planar vectors, one per image.
pub async fn read_planar(images: Tensor<4>) -> Result<Vec<Vec<f32>>> {
    let [b, c, h, w] = images.dims();
    let flat = read_vec(images).await?;
    Ok(flat.chunks(c * h * w).take(b).map(|s| s.to_vec()).collect())
}

/// Image quality of the counterfactual against the reconstruction (network-free metrics of
/// the paper's Table 1; images in [0, 1]).
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub psnr_db: f64,
    /// Artifact-Eraser's TV (squared, count-normalised, × 255).
    pub tv_reconstruction: f64,
    pub tv_counterfactual: f64,
    /// ESNLE σ in 8-bit units (one strip, the whole image); `None` when the search finds none.
    pub esnle_reconstruction: Option<f64>,
    pub esnle_counterfactual: Option<f64>,
}

impl Quality {
    pub fn measure(reconstruction: &[f32], counterfactual: &[f32], size: usize) -> Self {
        use crate::metrics::{esnle_255, psnr, to_unit_range, tv_artifact_eraser};
        let (rec, cf) = (to_unit_range(reconstruction), to_unit_range(counterfactual));
        Self {
            psnr_db: psnr(&rec, &cf, 1.0),
            tv_reconstruction: tv_artifact_eraser(&rec, 1, 3, size, size),
            tv_counterfactual: tv_artifact_eraser(&cf, 1, 3, size, size),
            esnle_reconstruction: esnle_255(&rec, 3, size, size, 1)[0],
            esnle_counterfactual: esnle_255(&cf, 3, size, size, 1)[0],
        }
    }
}

/// The outcome of one explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Counterfactual {
    #[serde(skip)]
    pub input: RgbaImage,
    #[serde(skip)]
    pub reconstruction: RgbaImage,
    #[serde(skip)]
    pub counterfactual: RgbaImage,
    #[serde(skip)]
    pub residual: ResidualMap,
    pub detector: String,
    pub p_fake_reconstruction: f32,
    pub p_fake_counterfactual: f32,
    pub steps: usize,
    pub success: bool,
    pub quality: Quality,
    pub history: Vec<StepReport>,
}

/// Inverts `image`, runs the latent search against `detector`, and renders the result.
/// `on_step` sees every step as it happens.
pub async fn explain(
    zoo: &Zoo,
    image: &RgbaImage,
    detector: &str,
    mask: &RowMask,
    config: &SearchConfig,
    device: &Device,
    mut on_step: impl FnMut(&StepReport),
) -> Result<Counterfactual> {
    let det = zoo.detector(detector)?;
    let size = zoo.generator.size;
    let inversion = zoo.invert(image, device);
    let mut search = LatentSearch::new(&zoo.generator, det, inversion.latent, mask, config.clone())?;
    let mut history = Vec::new();
    while !search.is_done() {
        let report = search.step().await?;
        on_step(&report);
        history.push(report);
    }
    let counterfactual = zoo.generator.synthesize(search.latent());
    let p_after = read_vec(det.p_fake(counterfactual.clone())).await?[0];
    let p_before = match history.first() {
        Some(first) => first.p_fake[0],
        None => read_vec(det.p_fake(inversion.reconstruction.clone())).await?[0],
    };
    let rec = read_planar(inversion.reconstruction).await?.remove(0);
    let cf = read_planar(counterfactual).await?.remove(0);
    Ok(Counterfactual {
        input: image.center_square().resize(size, size),
        reconstruction: RgbaImage::from_planar(&rec, size, size),
        counterfactual: RgbaImage::from_planar(&cf, size, size),
        residual: ResidualMap::new(&rec, &cf, size, size),
        detector: detector.to_string(),
        p_fake_reconstruction: p_before,
        p_fake_counterfactual: p_after,
        steps: search.steps_taken(),
        success: config.reached(p_after),
        quality: Quality::measure(&rec, &cf, size),
        history,
    })
}

/// The victim's CAM for "fake" on the reconstruction and on the counterfactual, as overlays:
/// where the detector looked before and after the search.
pub async fn cam_overlays(
    zoo: &Zoo,
    result: &Counterfactual,
    method: crate::explain::CamMethod,
    device: &Device,
) -> Result<(RgbaImage, RgbaImage)> {
    let det = zoo.detector(&result.detector)?;
    let mut out = Vec::with_capacity(2);
    for img in [&result.reconstruction, &result.counterfactual] {
        let cam = crate::explain::class_activation(det, img.to_tensor(img.width, device), 1, method).await?;
        out.push(cam.overlay(img, 0.5));
    }
    let counterfactual = out.pop().expect("two overlays");
    Ok((out.pop().expect("two overlays"), counterfactual))
}

//! The method end to end: invert a face into W+, search the latent until the detector calls
//! the regenerated face real, and return what changed. The CLI and the browser binding both
//! drive this one function.

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::explain::ResidualMap;
use crate::image::RgbaImage;
use crate::inversion::{Inversion, TuningStep};
use crate::search::{read_vec, LatentSearch, QualityNetworks, RowMask, SearchConfig, StepReport};
use crate::zoo::Zoo;

/// Reads `[B, 3, H, W]` images in [-1, 1] back as planar vectors, one per image.
pub async fn read_planar(images: Tensor<4>) -> Result<Vec<Vec<f32>>> {
    let [b, c, h, w] = images.dims();
    let flat = read_vec(images).await?;
    Ok(flat.chunks(c * h * w).take(b).map(|s| s.to_vec()).collect())
}

/// Image quality of a changed image against its reference (Table 1): the counterfactual
/// against the reconstruction, or a pixel attack's output against the input.
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
        use crate::metrics::{esnle_255, psnr, ssim, to_unit_range, tv_artifact_eraser, tv_l1_sum};
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
}

impl Zoo {
    /// Every metric of `changed` against `reference` (`[1, 3, S, S]` in [-1, 1]); LPIPS and ID
    /// when the zoo has their networks.
    pub async fn quality(&self, reference: Tensor<4>, changed: Tensor<4>) -> Result<Quality> {
        let size = reference.dims()[2];
        let lpips = match &self.perceptual {
            Some(net) => Some(read_vec(net.forward(reference.clone(), changed.clone())).await?[0] as f64),
            None => None,
        };
        let id_similarity = match &self.identity {
            Some(net) => Some(read_vec(net.similarity(reference.clone(), changed.clone())).await?[0] as f64),
            None => None,
        };
        let (a, b) = (read_planar(reference).await?.remove(0), read_planar(changed).await?.remove(0));
        Ok(Quality { lpips, id_similarity, ..Quality::measure(&a, &b, size) })
    }

    /// P(fake) of `image` under every detector, in the zoo's order.
    pub async fn score_all(&self, image: Tensor<4>) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.detectors.len());
        for (_, det) in &self.detectors {
            out.push(read_vec(det.p_fake(image.clone())).await?[0]);
        }
        Ok(out)
    }
}

/// One detector's P(fake) on the input, the reconstruction and the counterfactual: the
/// victim's row shows the attack, the others show transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorScores {
    pub detector: String,
    pub input: f32,
    pub reconstruction: f32,
    pub counterfactual: f32,
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
    /// Counterfactual − reconstruction: what the search changed.
    #[serde(skip)]
    pub residual: ResidualMap,
    /// Reconstruction − input: what inversion lost, shown apart so it is never read as an
    /// artifact.
    #[serde(skip)]
    pub inversion_error: ResidualMap,
    pub detector: String,
    pub p_fake_reconstruction: f32,
    pub p_fake_counterfactual: f32,
    /// Every detector of the zoo, the victim included.
    pub scores: Vec<DetectorScores>,
    pub steps: usize,
    pub success: bool,
    /// The counterfactual against the reconstruction.
    pub quality: Quality,
    /// PSNR of the reconstruction against the input (inversion fidelity).
    pub inversion_psnr_db: f64,
    pub history: Vec<StepReport>,
}

/// Extra views of the search as it runs, for live displays, from the image each step already
/// rendered: every detector's forward on the steps they are asked for, no generator forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    /// Every detector's P(fake) at every step (transfer as it happens).
    pub all_detectors: bool,
    /// The current counterfactual every this many steps (0: never).
    pub thumbnail_every: usize,
}

/// What a step shows beyond its report, at the point the step evaluated (the latent it started
/// from; NI-FGSM: its look-ahead point).
#[derive(Debug, Clone, Default)]
pub struct StepView {
    /// P(fake) of every detector, in the zoo's order.
    pub p_fake_all: Option<Vec<f32>>,
    pub thumbnail: Option<RgbaImage>,
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
    explain_live(zoo, image, detector, mask, config, Live::default(), device, |p| {
        if let Progress::Search(r, _) = p {
            on_step(r)
        }
    })
    .await
}

/// What `explain_live` reports as it goes: the pivotal tuning's steps, then the search's.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Tuning(&'a TuningStep),
    Search(&'a StepReport, &'a StepView),
}

/// `explain` with live views of the tuning and the search (`Live`).
#[allow(clippy::too_many_arguments)]
pub async fn explain_live(
    zoo: &Zoo,
    image: &RgbaImage,
    detector: &str,
    mask: &RowMask,
    config: &SearchConfig,
    live: Live,
    device: &Device,
    mut on_progress: impl FnMut(Progress),
) -> Result<Counterfactual> {
    let inversion = zoo.invert_tuned(image, &config.pivotal_tuning, device, &mut |t| on_progress(Progress::Tuning(t))).await?;
    explain_inverted(zoo, image, &inversion, detector, mask, config, live, device, |r, v| on_progress(Progress::Search(r, v))).await
}

/// `explain_live` from an inversion of `image` made beforehand: one image's several searches
/// then share one inversion. It must have been made with `config`'s pivotal tuning.
#[allow(clippy::too_many_arguments)]
pub async fn explain_inverted(
    zoo: &Zoo,
    image: &RgbaImage,
    inversion: &Inversion,
    detector: &str,
    mask: &RowMask,
    config: &SearchConfig,
    live: Live,
    device: &Device,
    mut on_step: impl FnMut(&StepReport, &StepView),
) -> Result<Counterfactual> {
    if !inversion.made_with(&config.pivotal_tuning) {
        return Err(crate::error::Error::config(format!(
            "the inversion was made with {} steps of pivotal tuning, the search asks for {}",
            inversion.tuning.map_or(0, |t| t.steps),
            config.pivotal_tuning.steps
        )));
    }
    let det = zoo.detector(detector)?;
    let size = zoo.generator.size;
    let generator = inversion.generator(zoo);
    let networks = QualityNetworks { perceptual: zoo.perceptual.as_ref(), identity: zoo.identity.as_ref() };
    let mut search = LatentSearch::new(generator, det, inversion.latent.clone(), mask, config.clone())?.with_regularisers(networks)?;
    let mut history = Vec::new();
    while !search.is_done() {
        let step = search.steps_taken();
        let thumbnail_due = live.thumbnail_every > 0 && step % live.thumbnail_every == 0;
        let report = search.step().await?;
        // The image the step itself rendered: the views cost no generator forward.
        let mut view = StepView::default();
        if let (Some(rendered), true) = (search.evaluated_images(), live.all_detectors || thumbnail_due) {
            if live.all_detectors {
                view.p_fake_all = Some(zoo.score_all(rendered.clone()).await?);
            }
            if thumbnail_due {
                view.thumbnail = Some(RgbaImage::from_planar(&read_planar(rendered).await?.remove(0), size, size));
            }
        }
        on_step(&report, &view);
        history.push(report);
    }
    search.refine().await?;
    let counterfactual = generator.synthesize(search.latent());
    let input = image.center_square().resize(size, size);
    let input_tensor = input.to_tensor(size, device);
    let (s_in, s_rec, s_cf) = (
        zoo.score_all(input_tensor.clone()).await?,
        zoo.score_all(inversion.reconstruction.clone()).await?,
        zoo.score_all(counterfactual.clone()).await?,
    );
    let victim = zoo.detectors.iter().position(|(n, _)| n == detector).expect("the victim is in the zoo");
    let scores = zoo
        .detectors
        .iter()
        .enumerate()
        .map(|(i, (name, _))| DetectorScores { detector: name.clone(), input: s_in[i], reconstruction: s_rec[i], counterfactual: s_cf[i] })
        .collect();
    let quality = zoo.quality(inversion.reconstruction.clone(), counterfactual.clone()).await?;
    let rec = read_planar(inversion.reconstruction.clone()).await?.remove(0);
    let cf = read_planar(counterfactual).await?.remove(0);
    let inp = input.to_planar();
    let unit = crate::metrics::to_unit_range;
    Ok(Counterfactual {
        input,
        reconstruction: RgbaImage::from_planar(&rec, size, size),
        counterfactual: RgbaImage::from_planar(&cf, size, size),
        residual: ResidualMap::new(&rec, &cf, size, size),
        inversion_error: ResidualMap::new(&inp, &rec, size, size),
        detector: detector.to_string(),
        p_fake_reconstruction: s_rec[victim],
        p_fake_counterfactual: s_cf[victim],
        scores,
        steps: search.steps_taken(),
        success: config.reached(s_cf[victim]),
        quality,
        inversion_psnr_db: crate::metrics::psnr(&unit(&inp), &unit(&rec), 1.0),
        history,
    })
}

/// The victim's CAM for `target` on the input, the reconstruction and the counterfactual:
/// where the detector looked before and after the search.
pub async fn cams(
    zoo: &Zoo,
    result: &Counterfactual,
    method: crate::explain::CamMethod,
    target: &crate::explain::CamTarget,
    device: &Device,
) -> Result<[crate::explain::Cam; 3]> {
    let det = zoo.detector(&result.detector)?;
    let mut out = Vec::with_capacity(3);
    for img in [&result.input, &result.reconstruction, &result.counterfactual] {
        out.push(crate::explain::class_activation(det, img.to_tensor(img.width, device), target, method).await?);
    }
    Ok(out.try_into().expect("three maps"))
}

//! One explanation, top to bottom: the spine every front calls.
//!
//! crop → invert → tune → search → refine → render → residual → CAMs → localisation → quality
//!
//! Each step is one call into the layer that owns it (`image`, `inversion`, `search`,
//! `explain`, `metrics`), so this file reads as the method of the paper. Progress goes to one
//! [`Observer`]: the CLI's progress line, the worker's messages and eval's records are observers.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::explain::{Cam, CamMethod, CamTarget, GroundTruth, Localisation, ResidualMap, class_activation};
use crate::image::{RgbaImage, Square};
use crate::inversion::{Inversion, LatentCodes, PivotalTuning, TuningStep};
use crate::metrics::{Quality, psnr, to_unit_range};
use crate::networks::stylegan2::Generator;
use crate::readback::{read_planar, read_vec};
use crate::search::{LatentSearch, RowMask, SearchConfig, StepReport};
use crate::weights::HostTensor;
use crate::zoo::Zoo;

/// One explanation, resolved against a zoo: every choice made, every value checked.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    /// The victim.
    pub detector: String,
    /// The rows of W+ the search may move.
    pub mask: RowMask,
    pub search: SearchConfig,
    /// The CAM the explanation shows on the input, the reconstruction and the counterfactual;
    /// `None`: no pictures (the localisation against a truth mask still makes its Grad-CAM).
    pub cam: Option<CamChoice>,
    /// The face square in the image's pixels; `None`: the centred square.
    pub crop: Option<Square>,
    pub live: Live,
    /// The ground-truth mask of the forgery, when it is known.
    pub truth: Option<TruthMask>,
    /// A saved inversion to start from instead of the encoder's (`unforge run --latent`).
    pub start: Option<LatentCodes>,
}

/// A ground-truth mask as a front gives it: a picture at the image's size, white where the
/// forgery altered a pixel, and where it came from (named in errors).
#[derive(Debug, Clone)]
pub struct TruthMask {
    pub image: RgbaImage,
    /// A file path, or the option that carried it.
    pub origin: String,
}

impl ExplainRequest {
    /// A search against `detector` with no pictures, the centred crop and no truth.
    pub fn new(detector: impl Into<String>, mask: RowMask, search: SearchConfig) -> Self {
        let live = Live::default();
        Self { detector: detector.into(), mask, search, cam: None, crop: None, live, truth: None, start: None }
    }
}

/// Which class activation map, of which class at which layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CamChoice {
    pub method: CamMethod,
    pub target: CamTarget,
}

impl CamChoice {
    /// Grad-CAM for "fake" at the last block: what localisation is scored with.
    pub fn grad_cam_fake() -> Self {
        Self { method: CamMethod::GradCam, target: CamTarget::fake() }
    }
}

/// Extra views of the search as it runs, for live displays, from the image each step already
/// rendered: every detector's forward on the steps they are asked for, no generator forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
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

/// The stages an explanation goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Inverting,
    Tuning,
    /// A front reuses an inversion it kept (the same face, the same tuning): no inverting.
    Reusing,
    Searching,
    Rendering,
    Explaining,
}

/// What an explanation reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Stage(Stage),
    Tuning(&'a TuningStep),
    Search(&'a StepReport, &'a StepView),
}

/// Sees an explanation's progress.
pub trait Observer {
    fn observe(&mut self, progress: Progress<'_>);
}

/// No one is watching.
impl Observer for () {
    fn observe(&mut self, _: Progress<'_>) {}
}

struct FnObserver<F>(F);

impl<F: FnMut(Progress<'_>)> Observer for FnObserver<F> {
    fn observe(&mut self, progress: Progress<'_>) {
        (self.0)(progress)
    }
}

/// An observer from a closure.
pub fn observer(f: impl FnMut(Progress<'_>)) -> impl Observer {
    FnObserver(f)
}

/// One detector's P(fake) on the input, the reconstruction and the counterfactual: the
/// victim's row shows the attack, the others show transfer.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DetectorScores {
    pub detector: String,
    pub input: f32,
    pub reconstruction: f32,
    pub counterfactual: f32,
}

/// A search through a preview of the generator: its side and the victim's last P(fake) on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct PreviewScore {
    pub size: usize,
    pub p_fake: f32,
}

/// The generator a search with `preview` runs through: `None` for the full size (no preview,
/// or one at least as large). Every detector must see a preview at its own input size or a
/// multiple of it, since the live views score the steps with all of them.
fn preview_generator(zoo: &Zoo, generator: &Generator, preview: Option<usize>) -> Result<Option<Generator>> {
    let Some(side) = preview.filter(|&s| s < generator.size) else { return Ok(None) };
    if let Some((name, input)) = zoo.preview_clash(side) {
        return Err(Error::config(format!(
            "preview size {side}: detector `{name}` takes {input} px, so the preview must be a multiple of it"
        )));
    }
    Ok(Some(generator.clone().with_render_size(side)?))
}

/// The outcome of one explanation. Its numbers serialise as a report's `result`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The face crop at the generator's size, as the networks saw it.
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
    /// The requested CAM on the input, the reconstruction and the counterfactual.
    #[serde(skip)]
    pub cams: Option<[Cam; 3]>,
    /// The truth mask as scored, on the generator's grid.
    #[serde(skip)]
    pub truth: Option<Vec<bool>>,
    pub detector: String,
    pub p_fake_reconstruction: f32,
    pub p_fake_counterfactual: f32,
    /// Every detector of the zoo, the victim included.
    pub scores: Vec<DetectorScores>,
    pub steps: usize,
    pub success: bool,
    /// The first step at whose latent the goal held.
    pub first_success_step: Option<usize>,
    /// The preview the search ran through, and the victim's P(fake) on it at the end (the
    /// scores above are the full-size render's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewScore>,
    /// The counterfactual against the reconstruction.
    pub quality: Quality,
    /// PSNR of the reconstruction against the input (inversion fidelity).
    pub inversion_psnr_db: f64,
    /// How well the residual and the Grad-CAM drop find the truth mask, when there is one (a
    /// report keeps it under `truth`, beside the mask's name).
    #[serde(skip)]
    pub localisation: Option<Localisation>,
    pub history: Vec<StepReport>,
    /// The inversion's and the counterfactual's W+, for `latents.safetensors`.
    #[serde(skip)]
    pub codes: LatentCodes,
}

/// The face an explanation works on: the crop at the generator's size, and the truth mask cut
/// the same way, on the generator's grid.
pub struct Face {
    /// The square as cut, at the image's resolution: each network resamples it to its own size.
    pub crop: RgbaImage,
    /// The square at the generator's size: what the reconstruction is compared with.
    pub image: RgbaImage,
    pub truth: Option<Vec<bool>>,
}

impl Face {
    /// `square` of `image` at `size` px, with a mask picture at the image's size cut by the same
    /// square. The square is checked first: a bad one is the crop's fault, not the mask's.
    pub fn with_mask(image: &RgbaImage, square: &Square, mask: Option<&TruthMask>, size: usize) -> Result<Self> {
        square.fits(image.width, image.height)?;
        let truth = match mask {
            Some(mask) => Some(
                GroundTruth::for_image(&mask.image, image, square)
                    .map_err(|e| Error::config(format!("{}: {e}", mask.origin)))?,
            ),
            None => None,
        };
        Self::cut(image, square, truth.as_ref(), size)
    }

    /// `square` of `image` at `size` px, with the truth mask already cut by the same square.
    pub fn cut(image: &RgbaImage, square: &Square, truth: Option<&GroundTruth>, size: usize) -> Result<Self> {
        let crop = image.crop_square(square)?;
        Ok(Self { image: crop.resize(size, size), crop, truth: truth.map(|t| t.at(size)) })
    }
}

/// Explains `image`: every step of the method, in order.
pub async fn explain(
    zoo: &Zoo,
    image: &RgbaImage,
    request: &ExplainRequest,
    observer: &mut dyn Observer,
) -> Result<Explanation> {
    let face = crop(zoo, image, request)?;
    let inversion = invert(zoo, &face, request, observer).await?;
    explain_inverted(zoo, &face, &inversion, request, observer).await
}

/// Steps 2 and 3, invert and tune: the face's place in W+, and the generator tuned around it
/// when the request asks for pivotal tuning.
pub async fn invert(
    zoo: &Zoo,
    face: &Face,
    request: &ExplainRequest,
    observer: &mut dyn Observer,
) -> Result<Inversion> {
    observer.observe(Progress::Stage(Stage::Inverting));
    let inverter = zoo.inverter();
    let inversion = match &request.start {
        Some(codes) => inverter.from_codes(codes, &zoo.device),
        None => inverter.invert(&face.crop, &zoo.device),
    };
    let tuning = &request.search.pivotal_tuning;
    if tuning.active().is_some() {
        observer.observe(Progress::Stage(Stage::Tuning));
    }
    let on_tuning = &mut |t: &TuningStep| observer.observe(Progress::Tuning(t));
    inverter.tune(inversion, &face.crop, tuning, on_tuning).await
}

/// Step 1, crop: the face square of `image` at the generator's size, and the truth mask cut by
/// the same square. Checks the whole request first, so a bad one fails before any work.
pub fn crop(zoo: &Zoo, image: &RgbaImage, request: &ExplainRequest) -> Result<Face> {
    validate(zoo, request)?;
    let square = request.crop.unwrap_or_else(|| Square::centred(image.width, image.height));
    Face::with_mask(image, &square, request.truth.as_ref(), zoo.generator.size)
}

fn validate(zoo: &Zoo, request: &ExplainRequest) -> Result<()> {
    request.search.validate()?;
    let victim = zoo.detector(&request.detector)?;
    if let Some(codes) = &request.start {
        let (rows, width) = (zoo.manifest.n_latent, zoo.generator.style_dim);
        codes.check_fits(&zoo.manifest.name, &zoo.generator_fingerprint, rows, width)?;
    }
    if request.mask.n_latent() != zoo.manifest.n_latent {
        return Err(Error::config(format!(
            "the row mask has {} rows, the zoo's W+ {}",
            request.mask.n_latent(),
            zoo.manifest.n_latent
        )));
    }
    if let Some(CamChoice { target, .. }) = &request.cam {
        if let Some(layer) = &target.layer {
            victim.layer_index(layer)?;
        }
        let entry = zoo.manifest.detectors().find(|d| d.name == request.detector);
        if let Some(classes) = entry.and_then(|d| d.architecture.classes()).filter(|&n| target.class >= n) {
            return Err(Error::config(format!(
                "CAM class {} is outside the detector's {classes} classes",
                target.class
            )));
        }
    }
    Ok(())
}

/// Steps 4 to 10 from an inversion of `face` made beforehand: one image's several searches
/// then share one inversion. It must have been made with the request's pivotal tuning.
pub async fn explain_inverted(
    zoo: &Zoo,
    face: &Face,
    inversion: &Inversion,
    request: &ExplainRequest,
    observer: &mut dyn Observer,
) -> Result<Explanation> {
    let config = &request.search;
    if !inversion.made_with(&config.pivotal_tuning) {
        return Err(Error::config(format!(
            "the inversion was made with {}, the search asks for {}",
            PivotalTuning::describe(inversion.tuning.as_ref()),
            PivotalTuning::describe(Some(&config.pivotal_tuning))
        )));
    }
    let victim = zoo.detector(&request.detector)?;
    let generator = inversion.generator(&zoo.generator);
    let preview = preview_generator(zoo, generator, config.preview)?;

    // Search, then refine: sign steps in W+ until the victim calls the rendering real.
    observer.observe(Progress::Stage(Stage::Searching));
    let start = inversion.latent.clone();
    let search_generator = preview.as_ref().unwrap_or(generator);
    let search = LatentSearch::new(search_generator, victim, start, &request.mask, config.clone())?;
    let mut search = search.with_regularisers(zoo.quality_networks())?;
    let history = run_search(zoo, &mut search, request.live, observer).await?;
    search.refine().await?;
    // What the search itself last saw, to compare with the full-size render below.
    let preview = match &preview {
        Some(g) => {
            let p = read_vec(victim.p_fake(g.synthesize(search.latent()))).await?[0];
            Some(PreviewScore { size: g.render_size, p_fake: p })
        }
        None => None,
    };

    // Render: the counterfactual through the same generator as the reconstruction.
    observer.observe(Progress::Stage(Stage::Rendering));
    let size = zoo.generator.size;
    let codes = latent_codes(zoo, inversion, Some(search.latent()), Some(&request.detector)).await?;
    let counterfactual = generator.synthesize(search.latent());
    let input = face.image.to_tensor(size, &zoo.device);
    let scores = score(zoo, [input, inversion.reconstruction.clone(), counterfactual.clone()]).await?;
    let victim_scores =
        scores.iter().find(|s| s.detector == request.detector).expect("the victim is in the zoo").clone();
    let quality = zoo.quality(inversion.reconstruction.clone(), counterfactual.clone()).await?;
    let rec = read_planar(inversion.reconstruction.clone()).await?.remove(0);
    let cf = read_planar(counterfactual).await?.remove(0);
    let inp = face.image.to_planar();

    // Residual, CAMs, localisation: what changed, where the victim looked, and whether either
    // points at the forgery.
    observer.observe(Progress::Stage(Stage::Explaining));
    let residual = ResidualMap::new(&rec, &cf, size, size);
    let [reconstruction, counterfactual] = [&rec, &cf].map(|v| RgbaImage::from_planar(v, size, size));
    let images = [&face.image, &reconstruction, &counterfactual];
    let cams = match &request.cam {
        Some(choice) => Some(victim_cams(zoo, &request.detector, images, choice).await?),
        None => None,
    };
    let localisation = match &face.truth {
        Some(mask) => {
            let scored = match (&request.cam, &cams) {
                (Some(choice), Some(maps)) if *choice == CamChoice::grad_cam_fake() => maps.clone(),
                _ => victim_cams(zoo, &request.detector, images, &CamChoice::grad_cam_fake()).await?,
            };
            Some(Localisation::of_counterfactual(&residual, &scored, mask))
        }
        None => None,
    };
    Ok(Explanation {
        inversion_error: ResidualMap::new(&inp, &rec, size, size),
        inversion_psnr_db: psnr(&to_unit_range(&inp), &to_unit_range(&rec), 1.0),
        input: face.image.clone(),
        reconstruction,
        counterfactual,
        residual,
        cams,
        truth: face.truth.clone(),
        detector: request.detector.clone(),
        p_fake_reconstruction: victim_scores.reconstruction,
        p_fake_counterfactual: victim_scores.counterfactual,
        scores,
        steps: search.steps_taken(),
        success: config.reached(victim_scores.counterfactual),
        first_success_step: history.iter().find(|s| !s.active[0]).map(|s| s.step),
        preview,
        quality,
        localisation,
        history,
        codes,
    })
}

/// The W+ of an inversion (and of its counterfactual, after a search against `detector`),
/// with what they need to be read again: `latents.safetensors`.
pub async fn latent_codes(
    zoo: &Zoo,
    inversion: &Inversion,
    counterfactual: Option<burn::tensor::Tensor<3>>,
    detector: Option<&str>,
) -> Result<LatentCodes> {
    let shape = inversion.latent.dims().to_vec();
    let start = read_vec(inversion.latent.clone()).await?;
    let end = match counterfactual {
        Some(latent) => Some(HostTensor::new(shape.clone(), read_vec(latent).await?)),
        None => None,
    };
    let mut metadata = vec![
        ("zoo", zoo.manifest.name.clone()),
        ("generator", zoo.manifest.generator()?.name.clone()),
        ("generator_fingerprint", zoo.generator_fingerprint.clone()),
        ("pivotal_tuning_steps", inversion.tuning.map_or(0, |t| t.steps).to_string()),
        ("pivot_steps", inversion.tuning.map_or(0, |t| t.pivot.steps).to_string()),
        ("noise", "the generator's fixed buffers (noises.noise_*)".into()),
    ];
    if let Some(detector) = detector {
        metadata.push(("detector", detector.into()));
    }
    Ok(LatentCodes {
        inversion: HostTensor::new(shape, start),
        counterfactual: end,
        metadata: metadata.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        origin: String::new(),
    })
}

/// The search loop, with the live views each step asks for.
async fn run_search(
    zoo: &Zoo,
    search: &mut LatentSearch<'_>,
    live: Live,
    observer: &mut dyn Observer,
) -> Result<Vec<StepReport>> {
    let mut history = Vec::new();
    while !search.is_done() {
        let step = search.steps_taken();
        let thumbnail_due = live.thumbnail_every > 0 && step.is_multiple_of(live.thumbnail_every);
        let report = search.step().await?;
        // The image the step itself rendered: the views cost no generator forward.
        let mut view = StepView::default();
        if let (Some(rendered), true) = (search.evaluated_images(), live.all_detectors || thumbnail_due) {
            if live.all_detectors {
                view.p_fake_all = Some(zoo.score_all(rendered.clone()).await?);
            }
            if thumbnail_due {
                // At the preview's side when the search runs through one.
                let [_, _, h, w] = rendered.dims();
                let planar = read_planar(rendered).await?.remove(0);
                view.thumbnail = Some(RgbaImage::from_planar(&planar, w, h));
            }
        }
        observer.observe(Progress::Search(&report, &view));
        history.push(report);
    }
    Ok(history)
}

/// Every detector's P(fake) on the input, the reconstruction and the counterfactual.
async fn score(
    zoo: &Zoo,
    [input, reconstruction, counterfactual]: [burn::tensor::Tensor<4>; 3],
) -> Result<Vec<DetectorScores>> {
    let (s_in, s_rec, s_cf) =
        (zoo.score_all(input).await?, zoo.score_all(reconstruction).await?, zoo.score_all(counterfactual).await?);
    let names = zoo.detector_names().into_iter();
    Ok(names
        .enumerate()
        .map(|(i, detector)| DetectorScores {
            detector,
            input: s_in[i],
            reconstruction: s_rec[i],
            counterfactual: s_cf[i],
        })
        .collect())
}

/// The victim's CAM on the input, the reconstruction and the counterfactual: where the detector
/// looked before and after the search.
async fn victim_cams(zoo: &Zoo, detector: &str, images: [&RgbaImage; 3], choice: &CamChoice) -> Result<[Cam; 3]> {
    let det = zoo.detector(detector)?;
    let mut out = Vec::with_capacity(3);
    for img in images {
        out.push(class_activation(det, img.to_tensor(img.width, &zoo.device), &choice.target, choice.method).await?);
    }
    Ok(out.try_into().expect("three maps"))
}

//! From an image to its place in W+: the e4e encoder's inversion and, optionally, pivotal
//! tuning of the generator around it.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::image::RgbaImage;
use crate::networks::e4e::Encoder4Editing;
use crate::networks::stylegan2::Generator;
use crate::precision::require_f32;
use crate::readback::read_vec;
use crate::weights::{HostTensor, StoredPrecision, TensorFile};

/// An image's place in W+ and the generator's rendering of it.
pub struct Inversion {
    pub latent: Tensor<3>,
    pub reconstruction: Tensor<4>,
    /// The generator tuned to this image, when pivotal tuning ran; the search and the
    /// counterfactual then use it instead of the zoo's.
    pub tuned: Option<Generator>,
    /// The tuning this inversion was made with, when any.
    pub tuning: Option<PivotalTuning>,
}

impl Inversion {
    /// Whether a search with `tuning` may start from this inversion.
    pub fn made_with(&self, tuning: &PivotalTuning) -> bool {
        self.tuning == tuning.active()
    }

    /// The generator that renders this inversion: the tuned copy, else `base` (the zoo's).
    pub fn generator<'a>(&'a self, base: &'a Generator) -> &'a Generator {
        self.tuned.as_ref().unwrap_or(base)
    }
}

/// Pivotal tuning (Roich et al., "Pivotal Tuning for Latent-based Editing of Real Images",
/// 2022): a pivot in W+, then the generator's weights fine-tuned for a few Adam steps so that
/// G(pivot) reproduces this one image. An encoder alone returns a smooth face from the
/// generator's learnt range and drops what lies outside it, which for a forgery is often the
/// forgery's trace; tuning brings the trace back into the reconstruction, so the search has it
/// to remove. The pivot is the encoder's code, refined first by `pivot` (W+ optimisation, as
/// PTI finds its pivot by optimisation) when that asks for steps. The noise buffers stay fixed;
/// the loss is the pixel MSE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PivotalTuning {
    /// Adam steps on the generator's weights; 0 leaves the generator as it is.
    pub steps: usize,
    /// [`PivotalTuning::LEARNING_RATE`] when a manifest leaves it out.
    #[serde(default = "PivotalTuning::default_learning_rate")]
    pub learning_rate: f32,
    /// The pivot's W+ refinement before any tuning (off when a manifest leaves it out; left
    /// out when off, so settings without it read and write as they did before it).
    #[serde(default, skip_serializing_if = "LatentRefinement::is_off")]
    pub pivot: LatentRefinement,
}

impl PivotalTuning {
    /// Adam's step size for tuning: measured on the default (synthetic-trained) zoo (64 px),
    /// where 200 steps raise the reconstruction from 23 to 31 dB PSNR. PTI's own 3e-4 was
    /// chosen for 1024 px generators.
    pub const LEARNING_RATE: f32 = 2e-3;
    /// The most steps one image may ask for (each is a generator forward and backward).
    pub const MAX_STEPS: usize = 5000;

    fn default_learning_rate() -> f32 {
        Self::LEARNING_RATE
    }

    /// `steps` at the default learning rate, the encoder's code as the pivot.
    pub const fn steps(steps: usize) -> Self {
        Self { steps, learning_rate: Self::LEARNING_RATE, pivot: LatentRefinement::off() }
    }

    /// These settings with the pivot refined by `steps` at the default learning rate.
    pub fn with_pivot_steps(self, steps: usize) -> Self {
        Self { pivot: LatentRefinement::steps(steps), ..self }
    }

    pub const fn off() -> Self {
        Self::steps(0)
    }

    /// These settings when they change anything: a tuning or pivot step (any learning rate
    /// with no steps is no tuning).
    pub fn active(self) -> Option<Self> {
        (self.steps > 0 || self.pivot.steps > 0).then_some(self)
    }

    /// In words, for messages: "200 steps of pivotal tuning", with "from a pivot refined in N
    /// steps" when the pivot is.
    pub fn describe(settings: Option<&Self>) -> String {
        let (steps, pivot) = settings.map_or((0, 0), |t| (t.steps, t.pivot.steps));
        match pivot {
            0 => format!("{steps} steps of pivotal tuning"),
            p => format!("{steps} steps of pivotal tuning from a pivot refined in {p} steps"),
        }
    }

    /// Steps in all, the pivot's then the generator's (as [`TuningStep`] counts them).
    pub fn total_steps(&self) -> usize {
        self.pivot.steps + self.steps
    }

    pub fn validate(&self) -> Result<()> {
        self.pivot.validate()?;
        check_adam("pivotal tuning", self.steps, Self::MAX_STEPS, self.learning_rate)
    }

    /// A copy of `generator` tuned so that it renders `target` (`[1, 3, S, S]` in [-1, 1]) from
    /// `pivot` (the generator's steps only: the pivot is as given). Same inputs, same bits on
    /// one backend (Adam, fixed noise, no randomness). `on_step` sees each step's loss (read
    /// back, so progress is real on a GPU too).
    pub async fn tune(
        &self,
        generator: &Generator,
        pivot: Tensor<3>,
        target: Tensor<4>,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Generator> {
        self.validate()?;
        if self.steps > 0 {
            require_f32(&target.device(), "pivotal tuning")?;
        }
        let training = target.device().autodiff();
        let mut tuned = generator.clone().fork(&training).train();
        let (pivot, target) = (pivot.autodiff(), target.autodiff());
        let mut adam = AdamConfig::new().init();
        for step in 0..self.steps {
            let loss = (tuned.synthesize(pivot.clone()) - target.clone()).square().mean();
            let value = read_vec(loss.clone().without_autodiff()).await?[0];
            let grads = GradientsParams::from_grads(loss.backward(), &tuned);
            tuned = adam.step(self.learning_rate as f64, tuned, grads);
            on_step(&TuningStep { step, steps: self.steps, loss: value });
        }
        Ok(tuned.valid())
    }
}

/// An Adam run's settings, or an error naming `what`: at most `max` steps, a positive rate.
fn check_adam(what: &str, steps: usize, max: usize, learning_rate: f32) -> Result<()> {
    if steps > max {
        return Err(Error::config(format!("{what} takes at most {max} steps, got {steps}")));
    }
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return Err(Error::config(format!("the {what} learning rate must be positive, got {learning_rate}")));
    }
    Ok(())
}

/// W+ refinement: the encoder's code as a start, then Adam steps on W+ alone (the generator
/// and its noise buffers fixed, pixel MSE), so that G(w) comes closer to the image. An encoder
/// amortises inversion over every face and falls short on each (on the default zoo, 300 steps
/// raise 12 test images from 23.1 to 28.2 dB); unlike pivotal tuning, the generator is shared,
/// so a whole batch of images refines at once, and the codes stay the generator's own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatentRefinement {
    /// Adam steps; 0 keeps the encoder's code.
    pub steps: usize,
    /// [`LatentRefinement::LEARNING_RATE`] when a manifest leaves it out.
    #[serde(default = "LatentRefinement::default_learning_rate")]
    pub learning_rate: f32,
}

impl LatentRefinement {
    /// Adam's step size on W+: measured on the default (synthetic-trained) zoo (64 px), where
    /// 0.02 gained 5 dB in 300 steps and was still rising.
    pub const LEARNING_RATE: f32 = 0.02;
    /// The most steps one inversion may ask for (each is a generator forward and backward).
    pub const MAX_STEPS: usize = 5000;
    const BETA_1: f32 = 0.9;
    const BETA_2: f32 = 0.999;
    const EPSILON: f32 = 1e-8;

    fn default_learning_rate() -> f32 {
        Self::LEARNING_RATE
    }

    /// `steps` at the default learning rate.
    pub const fn steps(steps: usize) -> Self {
        Self { steps, learning_rate: Self::LEARNING_RATE }
    }

    pub const fn off() -> Self {
        Self::steps(0)
    }

    pub fn is_off(&self) -> bool {
        self.steps == 0
    }

    /// These settings when they refine at all.
    pub fn active(self) -> Option<Self> {
        (self.steps > 0).then_some(self)
    }

    pub fn validate(&self) -> Result<()> {
        check_adam("W+ refinement", self.steps, Self::MAX_STEPS, self.learning_rate)
    }

    /// `start` (`[B, rows, width]`) refined so that `generator` renders `target` (`[B, 3, S, S]`
    /// in [-1, 1]). Each image's loss is its own mean squared error and Adam works element by
    /// element, so an image refines as it would alone. Same inputs, same bits on one backend.
    /// `on_step` sees each step's loss, the batch's mean (read back: progress is real on a GPU).
    pub async fn refine(
        &self,
        generator: &Generator,
        start: Tensor<3>,
        target: Tensor<4>,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Tensor<3>> {
        self.validate()?;
        if self.steps > 0 {
            require_f32(&target.device(), "the pivot's W+ refinement")?;
        }
        let batch = target.dims()[0];
        let target = target.autodiff();
        let mut latent = start.without_autodiff();
        let (mut m, mut v) = (latent.zeros_like(), latent.zeros_like());
        for step in 0..self.steps {
            let w = latent.clone().autodiff().require_grad();
            let per_image = (generator.synthesize(w.clone()) - target.clone()).square().mean();
            let value = read_vec(per_image.clone().without_autodiff()).await?[0];
            // The sum of the images' own losses: each latent's gradient is its image's alone.
            let grads = (per_image * batch as f32).backward();
            let g = w.grad(&grads).expect("the latent requires grad");
            m = m * Self::BETA_1 + g.clone() * (1.0 - Self::BETA_1);
            v = v * Self::BETA_2 + g.square() * (1.0 - Self::BETA_2);
            let t = step as i32 + 1;
            let (c1, c2) = (1.0 - Self::BETA_1.powi(t), 1.0 - Self::BETA_2.powi(t));
            let update = (m.clone() / c1) / ((v.clone() / c2).sqrt() + Self::EPSILON);
            latent = latent - update * self.learning_rate;
            on_step(&TuningStep { step, steps: self.steps, loss: value });
        }
        Ok(latent)
    }
}

impl Default for LatentRefinement {
    fn default() -> Self {
        Self::off()
    }
}

/// What a tuning or refinement step saw (its loss before the update).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuningStep {
    pub step: usize,
    /// The steps asked for.
    pub steps: usize,
    /// Pixel MSE of the rendering against the image, in [-1, 1] units.
    pub loss: f32,
}

impl Default for PivotalTuning {
    fn default() -> Self {
        Self::off()
    }
}

/// The e4e encoder and the generator it inverts into: an image's way into W+.
#[derive(Clone, Copy)]
pub struct Inverter<'a> {
    pub encoder: &'a Encoder4Editing,
    pub generator: &'a Generator,
    /// Side of the encoder's square input.
    pub encoder_size: usize,
}

impl Inverter<'_> {
    /// e4e inversion: the encoder at its input size, then the generator. `image` is the face
    /// crop (resampled here to each network's size).
    pub fn invert(&self, image: &RgbaImage, device: &Device) -> Inversion {
        let x = image.to_tensor(self.encoder_size, device);
        let latent = self.encoder.forward(x);
        let reconstruction = self.generator.synthesize(latent.clone());
        Inversion { latent, reconstruction, tuned: None, tuning: None }
    }

    /// The inversion a saved W+ code stands for: no encoder, the generator renders it.
    pub fn from_codes(&self, codes: &LatentCodes, device: &Device) -> Inversion {
        let [rows, width] = [codes.inversion.shape[1], codes.inversion.shape[2]];
        let data = burn::tensor::TensorData::new(codes.inversion.data.clone(), [1, rows, width]);
        let latent = Tensor::<3>::from_data(data, device);
        let reconstruction = self.generator.synthesize(latent.clone());
        Inversion { latent, reconstruction, tuned: None, tuning: None }
    }

    /// [`Inverter::invert`], then [`Inverter::tune`] when `tuning` asks for steps.
    pub async fn invert_tuned(
        &self,
        image: &RgbaImage,
        tuning: &PivotalTuning,
        device: &Device,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Inversion> {
        tuning.validate()?;
        self.tune(self.invert(image, device), image, tuning, on_step).await
    }

    /// Pivotal tuning: the inversion's code refined into the pivot when `tuning.pivot` asks
    /// for steps, then a copy of the generator tuned so that it renders `image` from the pivot
    /// when `tuning.steps` does (`on_step` sees each step, the pivot's first, counted as one
    /// run of [`PivotalTuning::total_steps`]); the inversion as it is when `tuning` asks for
    /// nothing.
    pub async fn tune(
        &self,
        inversion: Inversion,
        image: &RgbaImage,
        tuning: &PivotalTuning,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Inversion> {
        let Some(tuning) = tuning.active() else { return Ok(inversion) };
        tuning.validate()?;
        let target = image.to_tensor(self.generator.size, &inversion.latent.device());
        let total = tuning.total_steps();
        let count =
            |offset: usize| move |t: &TuningStep| TuningStep { step: offset + t.step, steps: total, loss: t.loss };
        let latent = match tuning.pivot.active() {
            Some(pivot) => {
                let renumber = count(0);
                pivot.refine(self.generator, inversion.latent, target.clone(), &mut |t| on_step(&renumber(t))).await?
            }
            None => inversion.latent,
        };
        if tuning.steps == 0 {
            let reconstruction = self.generator.synthesize(latent.clone());
            return Ok(Inversion { latent, reconstruction, tuned: None, tuning: Some(tuning) });
        }
        let renumber = count(tuning.pivot.steps);
        let tuned = tuning.tune(self.generator, latent.clone(), target, &mut |t| on_step(&renumber(t))).await?;
        let reconstruction = tuned.synthesize(latent.clone());
        Ok(Inversion { latent, reconstruction, tuned: Some(tuned), tuning: Some(tuning) })
    }
}

/// W+ codes as a file a researcher keeps: the inversion (and, after a search, the
/// counterfactual), `[1, rows, width]` in f32 safetensors, with the zoo they belong to in the
/// header's metadata. The generator's noise is its fixed buffers (`noises.noise_*`), so a code
/// and its zoo render the same image anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentCodes {
    pub inversion: HostTensor,
    pub counterfactual: Option<HostTensor>,
    /// `zoo` (the manifest's name), `generator`, `generator_fingerprint`, `detector`,
    /// `pivotal_tuning_steps`, `pivot_steps`, `noise`.
    pub metadata: BTreeMap<String, String>,
    /// Where the codes came from (a file path), named in errors; not stored.
    pub origin: String,
}

impl LatentCodes {
    pub const FORMAT: &'static str = "unforge-latents/1";

    pub fn to_safetensors(&self) -> Vec<u8> {
        let mut file = TensorFile::default();
        file.tensors.insert("inversion".into(), self.inversion.clone());
        if let Some(cf) = &self.counterfactual {
            file.tensors.insert("counterfactual".into(), cf.clone());
        }
        let mut metadata = self.metadata.clone();
        metadata.insert("format".into(), Self::FORMAT.into());
        file.to_safetensors_with(StoredPrecision::F32, Some(&metadata))
    }

    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<Self> {
        let metadata = TensorFile::metadata_of(bytes, origin)?;
        if metadata.get("format").map(String::as_str) != Some(Self::FORMAT) {
            return Err(Error::config(format!(
                "{origin}: not a W+ code file (its metadata has no `format: {}`; `unforge run` writes latents.safetensors)",
                Self::FORMAT
            )));
        }
        let mut file = TensorFile::from_safetensors(bytes, origin)?;
        let inversion = file
            .tensors
            .remove("inversion")
            .ok_or_else(|| Error::config(format!("{origin}: no `inversion` tensor")))?;
        let counterfactual = file.tensors.remove("counterfactual");
        for (key, t) in
            std::iter::once(("inversion", &inversion)).chain(counterfactual.iter().map(|c| ("counterfactual", c)))
        {
            if t.shape.len() != 3 || t.shape[0] != 1 {
                return Err(Error::config(format!(
                    "{origin}: `{key}` has shape {:?}, expected [1, rows, width]",
                    t.shape
                )));
            }
        }
        Ok(Self { inversion, counterfactual, metadata, origin: origin.into() })
    }

    /// Whether these codes belong to the zoo `zoo`, whose generator's weights have
    /// `fingerprint`, with W+ of `rows` × `width`.
    pub fn check_fits(&self, zoo: &str, fingerprint: &str, rows: usize, width: usize) -> Result<()> {
        let origin = &self.origin;
        if let Some(made_with) = self.metadata.get("generator_fingerprint").filter(|f| *f != fingerprint) {
            let made_on = self.metadata.get("zoo").map_or("another zoo", String::as_str);
            return Err(Error::config(format!(
                "{origin}: the codes were made with the generator of `{made_on}` (weights {made_with}), not with \
                 zoo `{zoo}`'s (weights {fingerprint}): a W+ code means something only to its own generator"
            )));
        }
        if self.inversion.shape[1..] != [rows, width] {
            return Err(Error::config(format!(
                "{origin}: `inversion` is W+ {:?}, the zoo's is [{rows}, {width}]",
                &self.inversion.shape[1..]
            )));
        }
        Ok(())
    }
}

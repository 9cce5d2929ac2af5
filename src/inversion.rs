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
/// 2022): the encoder's latent is kept as a pivot and the generator's weights are fine-tuned
/// for a few Adam steps so that G(pivot) reproduces this one image. An encoder alone returns a
/// smooth face from the generator's learnt range and drops what lies outside it, which for a
/// forgery is often the forgery's trace; tuning brings the trace back into the reconstruction,
/// so the search has it to remove. The noise buffers stay fixed; the loss is the pixel MSE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PivotalTuning {
    /// Adam steps; 0 leaves the generator as it is.
    pub steps: usize,
    /// [`PivotalTuning::LEARNING_RATE`] when a manifest leaves it out.
    #[serde(default = "PivotalTuning::default_learning_rate")]
    pub learning_rate: f32,
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

    /// `steps` at the default learning rate.
    pub fn steps(steps: usize) -> Self {
        Self { steps, learning_rate: Self::LEARNING_RATE }
    }

    pub fn off() -> Self {
        Self::steps(0)
    }

    /// These settings when they tune at all (any learning rate with no steps is no tuning).
    pub fn active(self) -> Option<Self> {
        (self.steps > 0).then_some(self)
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps > Self::MAX_STEPS {
            return Err(Error::config(format!(
                "pivotal tuning takes at most {} steps, got {}",
                Self::MAX_STEPS,
                self.steps
            )));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(format!(
                "the pivotal tuning learning rate must be positive, got {}",
                self.learning_rate
            )));
        }
        Ok(())
    }

    /// A copy of `generator` tuned so that it renders `target` (`[1, 3, S, S]` in [-1, 1]) from
    /// `pivot`. Same inputs, same bits on one backend (Adam, fixed noise, no randomness).
    /// `on_step` sees each step's loss (read back, so progress is real on a GPU too).
    pub async fn tune(
        &self,
        generator: &Generator,
        pivot: Tensor<3>,
        target: Tensor<4>,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Generator> {
        self.validate()?;
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

/// What a tuning step saw (its loss before the update).
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

    /// Pivotal tuning of a copy of the generator so that it renders `image` from the
    /// inversion's latent (`on_step` sees each step); the inversion as it is when `tuning` asks
    /// for no steps.
    pub async fn tune(
        &self,
        inversion: Inversion,
        image: &RgbaImage,
        tuning: &PivotalTuning,
        on_step: &mut dyn FnMut(&TuningStep),
    ) -> Result<Inversion> {
        let Some(tuning) = tuning.active() else { return Ok(inversion) };
        let target = image.to_tensor(self.generator.size, &inversion.latent.device());
        let tuned = tuning.tune(self.generator, inversion.latent.clone(), target, on_step).await?;
        let reconstruction = tuned.synthesize(inversion.latent.clone());
        Ok(Inversion { latent: inversion.latent, reconstruction, tuned: Some(tuned), tuning: Some(tuning) })
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
    /// `pivotal_tuning_steps`, `noise`.
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

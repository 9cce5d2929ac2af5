//! Fine-tuning the generator on a data set's faces before any search, the encoder frozen, as
//! Artifact-Eraser's `finetune.sh` runs it (`--train_encoder 0 --train_decoder 1`: L2 1.0,
//! LPIPS 1.0, ArcFace ID 0.1, batch 8, 1000 steps, from the e4e checkpoint), so that
//! reconstructions keep the traces of forgery. One tuned generator for the whole data set;
//! pivotal tuning tunes a copy for each image instead.

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Tensor;

use super::{Resume, Snapshot, export_params, host_vec};
use crate::error::{Error, Result};
use crate::image::RgbaImage;
use crate::networks::stylegan2::Generator;
use crate::precision::require_f32;
use crate::rng::SeededRng;
use crate::weights::{TensorFile, WeightSource};
use crate::zoo::{Architecture, Zoo};

/// Settings of a fine-tuning run.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorFinetuning {
    pub steps: usize,
    pub batch: usize,
    /// Adam's step size (e4e's default learning rate, 1e-4).
    pub learning_rate: f64,
    pub lambda_l2: f32,
    pub lambda_lpips: f32,
    pub lambda_id: f32,
    /// Seeds the order in which the images are shown.
    pub seed: u64,
}

impl Default for GeneratorFinetuning {
    fn default() -> Self {
        Self { steps: 1000, batch: 8, learning_rate: 1e-4, lambda_l2: 1.0, lambda_lpips: 1.0, lambda_id: 0.1, seed: 0 }
    }
}

impl GeneratorFinetuning {
    pub fn validate(&self, zoo: &Zoo) -> Result<()> {
        if self.steps == 0 || self.batch == 0 || !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config("fine-tuning needs steps ≥ 1, batch ≥ 1 and a positive learning rate"));
        }
        for (name, v) in [("l2", self.lambda_l2), ("lpips", self.lambda_lpips), ("id", self.lambda_id)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(format!("--lambda-{name} must be a number ≥ 0, got {v}")));
            }
        }
        if self.lambda_lpips > 0.0 && zoo.perceptual.is_none() {
            return Err(Error::config(
                "the LPIPS loss needs a perceptual network in the zoo (unforge zoo --perceptual), or --lambda-lpips 0",
            ));
        }
        if self.lambda_id > 0.0 && zoo.identity.is_none() {
            return Err(Error::config(
                "the ID loss needs an identity network in the zoo (unforge zoo --identity), or --lambda-id 0",
            ));
        }
        Ok(())
    }

    /// The images of `step`: a seeded order of all of them, epoch after epoch, so that a
    /// resumed run shows what the uninterrupted one would have.
    fn batch_of(&self, step: usize, count: usize) -> Vec<usize> {
        let order = |epoch: usize| {
            let mut order: Vec<usize> = (0..count).collect();
            let mut rng = SeededRng::new(self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9));
            for j in (1..count).rev() {
                order.swap(j, rng.range(0, j as u64 + 1) as usize);
            }
            order
        };
        let (first, last) = (step * self.batch, (step + 1) * self.batch);
        let mut epochs = (first / count..=(last - 1) / count).map(|e| (e, order(e)));
        let mut current = epochs.next().expect("a batch has an epoch");
        (first..last)
            .map(|i| {
                if i / count != current.0 {
                    current = epochs.next().expect("the next epoch");
                }
                current.1[i % count]
            })
            .collect()
    }
}

/// What one step saw (before its update).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinetuneStep {
    pub step: usize,
    pub loss: f32,
    pub l2: f32,
    pub lpips: Option<f32>,
    pub id: Option<f32>,
}

/// Fine-tunes the zoo's generator, whose weights by key are `weights`, so that it renders each
/// of `images` (face crops) from the zoo's encoder's inversion of it. `resume` continues a run
/// from its saved weights (Adam's moments start afresh); `on_step` may save the snapshot it is
/// handed. Returns the tuned generator's weights by key.
pub fn finetune_generator(
    zoo: &Zoo,
    weights: TensorFile,
    images: &[RgbaImage],
    config: &GeneratorFinetuning,
    resume: Option<Resume>,
    mut on_step: impl FnMut(&FinetuneStep, Snapshot) -> Result<()>,
) -> Result<TensorFile> {
    config.validate(zoo)?;
    if images.is_empty() {
        return Err(Error::config("fine-tuning needs at least one image"));
    }
    let Architecture::Stylegan2(cfg) = &zoo.manifest.generator()?.architecture else { unreachable!("validated") };
    let (size, device) = (cfg.size, zoo.device.clone());
    require_f32(&device, "fine-tuning the generator")?;
    // The encoder is frozen: every image's code is computed once.
    let codes: Vec<Tensor<3>> = images.iter().map(|img| zoo.inverter().invert(img, &device).latent).collect();
    let targets: Vec<Tensor<4>> = images.iter().map(|img| img.to_tensor(size, &device)).collect();
    let identities: Option<Vec<Tensor<2>>> = match (zoo.identity.as_ref(), config.lambda_id > 0.0) {
        (Some(arcface), true) => Some(targets.iter().map(|t| arcface.embed_aligned(t.clone())).collect()),
        _ => None,
    };
    let training = device.autodiff();
    let (start, source) = match resume {
        Some(r) => (r.step, WeightSource::checkpoint(r.weights, "fine-tuning checkpoint")),
        None => (0, WeightSource::checkpoint(weights, "the zoo's generator")),
    };
    // Batches share one convolution per layer in the non-fused form: the weight gradient is
    // one per layer, not one per sample.
    let mut generator = Generator::new(&source.root(&training), cfg)?.with_fused(false);
    let keys = source.param_keys();
    let bound = source.finish()?;
    let mut adam = AdamConfig::new().init();
    for step in start..config.steps {
        let picked = config.batch_of(step, images.len());
        let gather = |all: &[Tensor<3>]| Tensor::cat(picked.iter().map(|&i| all[i].clone()).collect(), 0);
        let w = gather(&codes).autodiff();
        let x = Tensor::cat(picked.iter().map(|&i| targets[i].clone()).collect(), 0).autodiff();
        let y = generator.synthesize(w);
        let l2 = (y.clone() - x.clone()).square().mean();
        let mut loss = l2.clone() * config.lambda_l2;
        // Every term read back in one transfer: a step waits on the device once.
        let mut terms = vec![l2];
        let lpips = match (zoo.perceptual.as_ref(), config.lambda_lpips > 0.0) {
            (Some(net), true) => {
                let d = net.forward(y.clone(), x).mean();
                loss = loss + d.clone() * config.lambda_lpips;
                terms.push(d);
                Some(terms.len() - 1)
            }
            _ => None,
        };
        let id = match (zoo.identity.as_ref(), &identities) {
            (Some(arcface), Some(embeddings)) => {
                let reference = Tensor::cat(picked.iter().map(|&i| embeddings[i].clone()).collect(), 0).autodiff();
                let cos = (arcface.embed_aligned(y) * reference).sum_dim(1);
                let d = (cos.neg() + 1.0).mean();
                loss = loss + d.clone() * config.lambda_id;
                terms.push(d);
                Some(terms.len() - 1)
            }
            _ => None,
        };
        terms.push(loss.clone());
        let values = host_vec(Tensor::cat(terms, 0).without_autodiff())?;
        let report = FinetuneStep {
            step,
            loss: values[values.len() - 1],
            l2: values[0],
            lpips: lpips.map(|i| values[i]),
            id: id.map(|i| values[i]),
        };
        if !report.loss.is_finite() {
            return Err(Error::config(format!(
                "fine-tuning diverged at step {step} (loss {}): lower --learning-rate",
                report.loss
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &generator);
        generator = adam.step(config.learning_rate, generator, grads);
        on_step(&report, &|| export_params(&generator, bound.clone(), &keys))?;
    }
    export_params(&generator, bound, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_is_shown_once_per_epoch_in_a_seeded_order() {
        let config = GeneratorFinetuning { batch: 3, seed: 4, ..Default::default() };
        let shown: Vec<usize> = (0..4).flat_map(|s| config.batch_of(s, 6)).collect();
        for epoch in shown.chunks(6) {
            let mut sorted = epoch.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        }
        assert_ne!(&shown[..6], &shown[6..], "each epoch has its own order");
        assert_eq!(shown, (0..4).flat_map(|s| config.batch_of(s, 6)).collect::<Vec<_>>());
    }
}

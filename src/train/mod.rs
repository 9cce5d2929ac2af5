//! Training on the synthetic world, on the CPU backend: the detectors so far. Networks are
//! built by the same constructors as for loading, on an autodiff device, and written back by
//! their original key names, so a trained network loads like any converted checkpoint.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::synth::{Label, Sample, Split};
use crate::weights::{HostTensor, TensorFile, WeightSource};
use crate::networks::e4e::{Encoder4Editing, EncoderConfig};
use crate::networks::stylegan2::{Generator, GeneratorConfig};
use crate::zoo::{build_detector, NetworkEntry};

/// Settings of a detector's training run.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorTraining {
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Seeds the initial weights; the images are the train split in order.
    pub seed: u64,
    /// The first train-split index used (so runs can continue where one stopped).
    pub first_index: u64,
}

impl DetectorTraining {
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.batch == 0 {
            return Err(Error::config("training needs at least one step and a batch of at least one image"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(format!("learning rate must be positive, got {}", self.learning_rate)));
        }
        Ok(())
    }
}

/// What a training step saw.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainStep {
    pub step: usize,
    pub loss: f32,
    /// Share of the batch classified right before the update.
    pub accuracy: f32,
}

/// Settings of the generator + encoder training (an autoencoder through W+; no discriminator).
#[derive(Debug, Clone, PartialEq)]
pub struct InverterTraining {
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub first_index: u64,
    /// Weight of the delta regulariser: mean squared distance of each W+ row from row 0 (e4e's
    /// "delta" loss, which keeps W+ near W).
    pub delta_weight: f32,
}

/// What an inverter training step saw (losses before the update).
#[derive(Debug, Clone, PartialEq)]
pub struct InverterStep {
    pub step: usize,
    /// Pixel MSE at full resolution, in [-1, 1] units.
    pub pixel: f32,
    /// Pixel MSE summed over the 2× and 4× average-pooled images.
    pub multiscale: f32,
    pub delta: f32,
}

/// Trains the StyleGAN2 synthesis (with mapping) and the e4e encoder together to reconstruct the
/// synthetic world, real and fake images alike, so that reconstructions keep the forgeries'
/// traces. Losses: pixel MSE, MSE at 2× and 4× coarser scales (so the coarse layout is learnt
/// before detail), and the delta regulariser. Returns both networks' weights by key.
pub fn train_inverter(generator: &GeneratorConfig, encoder: &EncoderConfig, config: &InverterTraining, mut on_step: impl FnMut(&InverterStep)) -> Result<(TensorFile, TensorFile)> {
    use burn::tensor::module::avg_pool2d;
    use burn::tensor::ops::AvgPoolOptions;
    if config.steps == 0 || config.batch == 0 || !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return Err(Error::config("inverter training needs steps ≥ 1, batch ≥ 1 and a positive learning rate"));
    }
    if encoder.input_size != generator.size || encoder.n_latent != generator.n_latent() {
        return Err(Error::config("the encoder must take the generator's image size and produce its W+ rows"));
    }
    let device = Device::flex().autodiff();
    let (gs, es) = (WeightSource::seeded(config.seed), WeightSource::seeded(config.seed ^ 0xE4E));
    let mut synthesis = Generator::new(&gs.root(&device), generator)?;
    let mut enc = Encoder4Editing::new(&es.root(&device), encoder)?;
    let (gkeys, ekeys) = (gs.param_keys(), es.param_keys());
    let (gbound, ebound) = (gs.finish()?, es.finish()?);
    let (mut gopt, mut eopt) = (AdamConfig::new().with_beta_2(0.99).init(), AdamConfig::new().with_beta_2(0.99).init());
    let size = generator.size;
    for step in 0..config.steps {
        let (x, _) = synth_batch(config.first_index + (step * config.batch) as u64, config.batch, size, &device);
        let w = enc.forward(x.clone());
        let y = synthesis.synthesize(w.clone());
        let pixel = (y.clone() - x.clone()).square().mean();
        let mut multiscale = pixel.zeros_like();
        for k in [2, 4] {
            let pool = |t: Tensor<4>| avg_pool2d(t, AvgPoolOptions::new([k, k]));
            multiscale = multiscale + (pool(y.clone()) - pool(x.clone())).square().mean();
        }
        let n = w.dims()[1];
        let delta = (w.clone().narrow(1, 1, n - 1) - w.narrow(1, 0, 1)).square().mean();
        let loss = pixel.clone() + multiscale.clone() + delta.clone() * config.delta_weight;
        let values = [host_vec(pixel.without_autodiff())?[0], host_vec(multiscale.without_autodiff())?[0], host_vec(delta.without_autodiff())?[0]];
        let mut grads = loss.backward();
        let (ge, gg) = (GradientsParams::from_module(&mut grads, &enc), GradientsParams::from_module(&mut grads, &synthesis));
        enc = eopt.step(config.learning_rate, enc, ge);
        synthesis = gopt.step(config.learning_rate, synthesis, gg);
        on_step(&InverterStep { step, pixel: values[0], multiscale: values[1], delta: values[2] });
    }
    Ok((export_params(&synthesis, gbound, &gkeys)?, export_params(&enc, ebound, &ekeys)?))
}

/// A batch of the synthetic world at `size` px: images in [-1, 1] and 0 (real) / 1 (fake).
pub fn synth_batch(first: u64, batch: usize, size: usize, device: &Device) -> (Tensor<4>, Vec<usize>) {
    let mut planar = Vec::with_capacity(batch * 3 * size * size);
    let mut labels = Vec::with_capacity(batch);
    for i in 0..batch as u64 {
        let s = Sample::generate(Split::Train, first + i, size);
        planar.extend(s.image.to_planar());
        labels.push(if s.label == Label::Real { 0 } else { 1 });
    }
    (Tensor::from_data(TensorData::new(planar, [batch, 3, size, size]), device), labels)
}

/// Trains the detector `entry` describes from seeded weights on the synthetic train split and
/// returns its weights by key. `on_step` sees every step.
pub fn train_detector(entry: &NetworkEntry, config: &DetectorTraining, mut on_step: impl FnMut(&TrainStep)) -> Result<TensorFile> {
    config.validate()?;
    let device = Device::flex().autodiff();
    let source = WeightSource::seeded(config.seed);
    let mut model = build_detector(entry, &source.root(&device))?;
    let keys = source.param_keys();
    let bound = source.finish()?;
    let mut optim = AdamConfig::new().init();
    let size = entry.input_size;
    for step in 0..config.steps {
        let (x, labels) = synth_batch(config.first_index + (step * config.batch) as u64, config.batch, size, &device);
        let logits = model.logits(x);
        let one_hot: Vec<f32> = labels.iter().flat_map(|&l| [(l == 0) as u8 as f32, (l == 1) as u8 as f32]).collect();
        let target = Tensor::<2>::from_data(TensorData::new(one_hot, [config.batch, 2]), &device);
        let log_p = burn::tensor::activation::log_softmax(logits.clone(), 1);
        let loss = (log_p * target).sum().neg() / config.batch as f32;
        let predicted = host_vec(logits.clone().without_autodiff())?;
        let right = labels.iter().enumerate().filter(|(i, l)| (predicted[i * 2 + 1] > predicted[i * 2]) == (**l == 1)).count();
        let loss_value = host_vec(loss.clone().without_autodiff())?[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(config.learning_rate, model, grads);
        on_step(&TrainStep { step, loss: loss_value, accuracy: right as f32 / config.batch as f32 });
    }
    export_params(&model, bound, &keys)
}

/// A tensor's values on the host (the CPU backend answers at once).
fn host_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
}

/// The checkpoint a builder bound, with every trainable parameter replaced by its value in
/// `module` (matched by parameter id, written under its original key).
pub fn export_params<M: Module>(module: &M, mut bound: TensorFile, keys: &BTreeMap<ParamId, String>) -> Result<TensorFile> {
    struct Collect<'a> {
        keys: &'a BTreeMap<ParamId, String>,
        out: &'a mut TensorFile,
        problems: Vec<String>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(key) = self.keys.get(&param.id) else { return };
            let t = param.val();
            let shape = t.dims().to_vec();
            match host_vec(t) {
                Ok(data) => {
                    self.out.tensors.insert(key.clone(), HostTensor::new(shape, data));
                }
                Err(e) => self.problems.push(format!("{key}: {e:?}")),
            }
        }
    }
    let mut visitor = Collect { keys, out: &mut bound, problems: Vec::new() };
    module.visit(&mut visitor);
    if visitor.problems.is_empty() { Ok(bound) } else { Err(Error::Backend(visitor.problems.join("; "))) }
}

/// Reconstruction PSNR and, per detector, the AUC on raw test images and the share of fakes
/// still detected after inversion.
pub fn test_scores(zoo: &crate::zoo::Zoo, size: usize, count: u64, device: &Device) -> Result<serde_json::Value> {
    let mut labels = Vec::new();
    let mut raw: Vec<Vec<f32>> = vec![Vec::new(); zoo.detectors.len()];
    let mut recon: Vec<Vec<f32>> = vec![Vec::new(); zoo.detectors.len()];
    let mut psnr = Vec::new();
    for index in 0..count {
        let s = Sample::generate(Split::Test, index, size);
        let fake = s.label != Label::Real;
        labels.push(fake);
        let x = s.image.to_tensor(size, device);
        let inv = zoo.invert(&s.image, device);
        let a = crate::metrics::to_unit_range(&s.image.to_planar());
        let b = crate::metrics::to_unit_range(&crate::block_on(crate::pipeline::read_planar(inv.reconstruction.clone()))?.remove(0));
        psnr.push(crate::metrics::psnr(&a, &b, 1.0));
        let (r, c) = (crate::block_on(zoo.score_all(x))?, crate::block_on(zoo.score_all(inv.reconstruction))?);
        for d in 0..zoo.detectors.len() {
            raw[d].push(r[d]);
            if fake {
                recon[d].push(c[d]);
            }
        }
    }
    let mut detectors = serde_json::Map::new();
    for (d, (name, _)) in zoo.detectors.iter().enumerate() {
        let detected = recon[d].iter().filter(|p| **p >= 0.5).count() as f64 / recon[d].len().max(1) as f64;
        let accuracy = raw[d].iter().zip(&labels).filter(|(p, l)| (**p >= 0.5) == **l).count() as f64 / labels.len() as f64;
        detectors.insert(name.clone(), serde_json::json!({ "auc": crate::metrics::auroc(&raw[d], &labels), "accuracy": accuracy, "detected_reconstructed_fakes": detected }));
    }
    Ok(serde_json::json!({ "images": count, "reconstruction_psnr_db": psnr.iter().sum::<f64>() / psnr.len() as f64, "detectors": detectors }))
}

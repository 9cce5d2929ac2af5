//! Training on the synthetic world, on the CPU backend: the inverter (generator + encoder) and
//! the detectors. Networks are
//! built by the same constructors as for loading, on an autodiff device, and written back by
//! their original key names, so a trained network loads like any converted checkpoint.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::inversion::PivotalTuning;
use crate::networks::e4e::{Encoder4Editing, EncoderConfig};
use crate::networks::layers::BatchNorm;
use crate::networks::stylegan2::{Generator, GeneratorConfig};
use crate::synth::{ForgeryStrength, Label, Sample, Split};
use crate::weights::{HostTensor, TensorFile, WeightSource};
use crate::zoo::{NetworkEntry, build_detector};

pub mod finetune;
pub mod identity;

/// Settings of a detector's training run.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorTraining {
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Seeds the initial weights; the images are the train split in order.
    pub seed: u64,
    /// The first forged face used (its pair index: train image 2·i + 1 and its pristine capture).
    pub first_index: u64,
    /// Share of each batch shown as its reconstruction through the inverter (when one is
    /// given): the search works on reconstructions, so the detectors must see forgeries there.
    pub reconstructed_share: f32,
    /// Weight of the location loss: the head's logits at each position of the last feature
    /// map against the ground-truth mask there (fake where any pixel of the cell was altered).
    /// The synthetic world knows where each forgery is; this tells the detector too.
    pub location_weight: f32,
    /// `None`: every step shows new faces (the world is endless). `Some(n)`: epochs over the
    /// first `n` pairs, as with a fixed data set.
    pub distinct_pairs: Option<u64>,
    /// The world's forgeries.
    pub forgeries: ForgeryStrength,
}

impl DetectorTraining {
    /// The pairs of each batch shown reconstructed (when reconstructions are given).
    pub fn reconstructed_pairs(&self) -> usize {
        ((self.batch / 2) as f32 * self.reconstructed_share).round() as usize
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.batch < 2 || !self.batch.is_multiple_of(2) {
            return Err(Error::config(format!(
                "detector training needs at least one step and an even batch (real and forged faces in pairs), got batch {}",
                self.batch
            )));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(format!("learning rate must be positive, got {}", self.learning_rate)));
        }
        if self.distinct_pairs == Some(0) {
            return Err(Error::config("a fixed training set needs at least one pair"));
        }
        if !(self.location_weight.is_finite() && self.location_weight >= 0.0) {
            return Err(Error::config(format!(
                "the location weight must be finite and ≥ 0, got {}",
                self.location_weight
            )));
        }
        if !(0.0..=1.0).contains(&self.reconstructed_share) {
            return Err(Error::config(format!(
                "the reconstructed share must be in [0, 1], got {}",
                self.reconstructed_share
            )));
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

/// Where a run continues: the step to start from and the weights saved after the step before.
/// The Adam moments start afresh, so a resumed run is close to, not bit-identical with, an
/// uninterrupted one; the images and the learning-rate schedule continue exactly.
#[derive(Debug, Clone)]
pub struct Resume {
    pub step: usize,
    pub weights: TensorFile,
}

/// Hands the weights as they are now to a step callback that wants to save a checkpoint.
pub type Snapshot<'a> = &'a dyn Fn() -> Result<TensorFile>;

/// The learning rate at `step` of `steps`: linear warm-up over the first 5 %, then a cosine
/// decay to 5 % of `base` (a constant rate left the detectors oscillating near the end).
pub fn learning_rate(base: f64, step: usize, steps: usize) -> f64 {
    let warmup = (steps / 20).max(1);
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
    base * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Generator + encoder at inference, for showing detectors reconstructions while they train.
#[derive(Debug)]
pub struct Reconstructor {
    generator: Generator,
    /// The same weights in the non-fused form, for W+ refinement: a batch shares one
    /// convolution per layer, and the weights do not train.
    refining: Generator,
    encoder: Encoder4Editing,
}

impl Reconstructor {
    pub fn new(generator: (&GeneratorConfig, TensorFile), encoder: (&EncoderConfig, TensorFile)) -> Result<Self> {
        let device = Device::flex();
        let (gs, es) =
            (WeightSource::checkpoint(generator.1, "generator"), WeightSource::checkpoint(encoder.1, "encoder"));
        let (g, e) =
            (Generator::new(&gs.root(&device), generator.0)?, Encoder4Editing::new(&es.root(&device), encoder.0)?);
        gs.finish()?;
        es.finish()?;
        Ok(Self { refining: g.clone().with_fused(false), generator: g, encoder: e })
    }

    /// Reconstructions of `[B, 3, S, S]` images in [-1, 1], on `device`.
    pub fn reconstruct(&self, x: Tensor<4>, device: &Device) -> Tensor<4> {
        let host = Tensor::<4>::from_data(x.into_data(), &Device::flex());
        let y = self.generator.synthesize(self.encoder.forward(host));
        Tensor::from_data(y.into_data(), device)
    }

    /// The reconstructions of `[B, 3, S, S]` images as a search with `tuning` sees them: the
    /// encoder's codes, their pivots refined together (each image's refinement is its own),
    /// then each image through its own tuned copy of the generator when tuning has steps.
    fn reconstruct_as(&self, x: Tensor<4>, tuning: &PivotalTuning) -> Result<Tensor<4>> {
        let mut latent = self.encoder.forward(x.clone());
        if let Some(pivot) = tuning.pivot.active() {
            latent = crate::readback::block_on(pivot.refine(&self.refining, latent, x.clone(), &mut |_| {}))?;
        }
        if tuning.steps == 0 {
            return Ok(self.refining.synthesize(latent));
        }
        let mut images = Vec::new();
        for i in 0..x.dims()[0] {
            let (pivot, target) = (latent.clone().narrow(0, i, 1), x.clone().narrow(0, i, 1));
            let tuned = crate::readback::block_on(tuning.tune(&self.generator, pivot.clone(), target, &mut |_| {}))?;
            images.push(tuned.synthesize(pivot));
        }
        Ok(Tensor::cat(images, 0))
    }
}

/// Where the reconstructed images of a detector's batches come from.
#[derive(Debug, Clone, Copy)]
pub enum Reconstructions<'a> {
    /// Plain inversions, made afresh for every batch.
    Inverted(&'a Reconstructor),
    /// Refined or pivotal-tuned ones from a pool made beforehand, shown again and again: each
    /// costs many generator passes, too many to make every batch afresh.
    Pool(&'a ReconstructionPool),
}

/// Train-split pairs (a forged face and its pristine capture) reconstructed as a search sees
/// them (W+ refinement, pivotal tuning). A detector that sees these for both classes learns
/// that the inversion's own trace (a smoothed face, the tuned generator's texture) says
/// nothing about forgery.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconstructionPool {
    size: usize,
    /// Planar `[2·pairs, 3, S, S]` in [-1, 1]: each pair's pristine image, then its forgery.
    images: Vec<f32>,
    /// Each image's altered-pixel mask (all false for the pristine ones).
    masks: Vec<Vec<bool>>,
}

impl ReconstructionPool {
    /// Pairs refined together (W+ refinement batches; tuning is one image at a time).
    const PAIRS_PER_BATCH: usize = 8;

    /// The pairs `pairs` (pair i: train image 2·i + 1 and its pristine capture) at `size` px,
    /// forged at `forgeries`, inverted with `tuning` (its pivot refinement, its generator tuning). `resume` holds the pool of the pairs
    /// made before a stop (as [`ReconstructionPool::to_file`] wrote it); `on_pair` sees each
    /// pair made and may save the snapshot it is handed (of the pairs up to that one), as a
    /// training stage's step callback does.
    pub fn make(
        reconstructor: &Reconstructor,
        pairs: std::ops::Range<u64>,
        size: usize,
        forgeries: &ForgeryStrength,
        tuning: &PivotalTuning,
        resume: Option<Resume>,
        mut on_pair: impl FnMut(usize, Snapshot) -> Result<()>,
    ) -> Result<Self> {
        tuning.validate()?;
        if tuning.active().is_none() {
            return Err(Error::config(
                "a reconstruction pool needs pivot refinement or tuning steps (plain reconstructions are made afresh for every batch)",
            ));
        }
        if size != reconstructor.generator.size {
            return Err(Error::config(format!(
                "a reconstruction pool at {size} px needs a generator of that size, this one renders {} px",
                reconstructor.generator.size
            )));
        }
        let mut pool = match resume {
            Some(r) => {
                let pool = Self::from_file(&r.weights)?;
                if pool.pairs() != r.step || pool.size != size {
                    return Err(Error::config(format!(
                        "the saved reconstruction pool holds {} pairs at {} px, its record says {} at {size} px",
                        pool.pairs(),
                        pool.size,
                        r.step
                    )));
                }
                pool
            }
            None => Self { size, images: Vec::new(), masks: Vec::new() },
        };
        let device = Device::flex();
        let count = pairs.clone().count();
        while pool.pairs() < count {
            let first = pool.pairs();
            let chunk: Vec<u64> =
                (first..count.min(first + Self::PAIRS_PER_BATCH)).map(|p| pairs.start + p as u64).collect();
            let (x, _, chunk_masks) = paired_batch(&chunk, size, forgeries, &device);
            pool.images.extend(host_vec(reconstructor.reconstruct_as(x, tuning)?.reshape([-1]))?);
            pool.masks.extend(chunk_masks);
            for p in first..pool.pairs() {
                on_pair(p, &|| Ok(pool.first(p + 1).to_file()))?;
            }
        }
        Ok(pool)
    }

    pub fn pairs(&self) -> usize {
        self.masks.len() / 2
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The pool's first `pairs` pairs.
    fn first(&self, pairs: usize) -> Self {
        let per = 3 * self.size * self.size;
        Self {
            size: self.size,
            images: self.images[..2 * pairs * per].to_vec(),
            masks: self.masks[..2 * pairs].to_vec(),
        }
    }

    /// Pairs `pairs` (indices into the pool) as a batch on `device`, with their masks.
    fn batch(&self, pairs: &[usize], device: &Device) -> (Tensor<4>, Vec<Vec<bool>>) {
        let per = 3 * self.size * self.size;
        let data: Vec<f32> =
            pairs.iter().flat_map(|&p| self.images[2 * p * per..(2 * p + 2) * per].iter().copied()).collect();
        let masks = pairs.iter().flat_map(|&p| self.masks[2 * p..2 * p + 2].iter().cloned()).collect();
        (Tensor::from_data(TensorData::new(data, [pairs.len() * 2, 3, self.size, self.size]), device), masks)
    }

    /// As a tensor file (`images`, `masks`), to keep with a run's checkpoints.
    pub fn to_file(&self) -> TensorFile {
        let n = self.masks.len();
        let masks = self.masks.iter().flatten().map(|m| *m as u8 as f32).collect();
        TensorFile {
            tensors: [
                ("images".to_string(), HostTensor::new(vec![n, 3, self.size, self.size], self.images.clone())),
                ("masks".to_string(), HostTensor::new(vec![n, self.size, self.size], masks)),
            ]
            .into(),
        }
    }

    pub fn from_file(file: &TensorFile) -> Result<Self> {
        let bad = || {
            Error::config("not a reconstruction pool: needs `images` [2·pairs, 3, S, S] and `masks` [2·pairs, S, S]")
        };
        let (images, masks) = (file.tensors.get("images").ok_or_else(bad)?, file.tensors.get("masks").ok_or_else(bad)?);
        let [n, 3, size, s2] = images.shape[..] else { return Err(bad()) };
        if size == 0 || s2 != size || n % 2 != 0 || masks.shape != [n, size, size] {
            return Err(bad());
        }
        let masks = masks.data.chunks(size * size).map(|m| m.iter().map(|v| *v > 0.5).collect()).collect();
        Ok(Self { size, images: images.data.clone(), masks })
    }
}

/// The generator and encoder in one file, under `decoder.` and `encoder.` as in e4e's
/// checkpoints (how the inverter's training checkpoints are kept).
pub fn join_inverter(generator: &TensorFile, encoder: &TensorFile) -> TensorFile {
    let prefixed =
        |p: &str, f: &TensorFile| f.tensors.iter().map(|(k, t)| (format!("{p}{k}"), t.clone())).collect::<Vec<_>>();
    TensorFile { tensors: prefixed("decoder.", generator).into_iter().chain(prefixed("encoder.", encoder)).collect() }
}

/// The two halves of [`join_inverter`].
pub fn split_inverter(file: TensorFile) -> (TensorFile, TensorFile) {
    (file.clone().select_prefix("decoder."), file.select_prefix("encoder."))
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
    /// The world's forgeries (half the images are fakes).
    pub forgeries: ForgeryStrength,
    /// Train the generator beside the encoder (the joint autoencoder). `false`: the encoder
    /// alone, the generator frozen, as the paper fine-tunes e4e on a data set (its B.1: "we
    /// freeze the parameters of the decoder"); the generator then runs in the non-fused form,
    /// the search's, and only W+ receives its gradient.
    pub train_generator: bool,
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

/// The seed of the encoder's initial weights in a run seeded with `seed`.
fn encoder_seed(seed: u64) -> u64 {
    seed ^ 0xE4E
}

/// The encoder an inverter run seeded with `seed` starts from, by key: the start of a new
/// encoder trained against a generator that is already trained.
pub fn seeded_encoder(config: &EncoderConfig, seed: u64) -> Result<TensorFile> {
    let source = WeightSource::seeded(encoder_seed(seed));
    Encoder4Editing::new(&source.root(&Device::flex()), config)?;
    source.finish()
}

/// Trains the StyleGAN2 synthesis (with mapping) and the e4e encoder together to reconstruct the
/// synthetic world, real and fake images alike, so that reconstructions keep the forgeries'
/// traces; or, with `train_generator` off, the encoder alone against a frozen generator.
/// Losses: pixel MSE, MSE at 2× and 4× coarser scales (so the coarse layout is learnt before
/// detail), and the delta regulariser. The encoder's BatchNorms use batch statistics.
/// `resume` holds a [`join_inverter`] file; `on_step` may save the snapshot it is handed.
/// Returns both networks' weights by key.
pub fn train_inverter(
    generator: &GeneratorConfig,
    encoder: &EncoderConfig,
    config: &InverterTraining,
    resume: Option<Resume>,
    mut on_step: impl FnMut(&InverterStep, Snapshot) -> Result<()>,
) -> Result<(TensorFile, TensorFile)> {
    use burn::tensor::module::avg_pool2d;
    use burn::tensor::ops::AvgPoolOptions;
    if config.steps == 0 || config.batch == 0 || !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return Err(Error::config("inverter training needs steps ≥ 1, batch ≥ 1 and a positive learning rate"));
    }
    if encoder.input_size != generator.size || encoder.n_latent != generator.n_latent() {
        return Err(Error::config("the encoder must take the generator's image size and produce its W+ rows"));
    }
    let device = Device::flex().autodiff();
    let (start, (gs, es)) = match resume {
        Some(r) => {
            let (g, e) = split_inverter(r.weights);
            (
                r.step,
                (
                    WeightSource::checkpoint(g, "generator checkpoint"),
                    WeightSource::checkpoint(e, "encoder checkpoint"),
                ),
            )
        }
        None => (0, (WeightSource::seeded(config.seed), WeightSource::seeded(encoder_seed(config.seed)))),
    };
    let mut synthesis = Generator::new(&gs.root(&device), generator)?;
    if !config.train_generator {
        // No weight gradients are computed for a frozen generator, only W+'s.
        synthesis = synthesis.with_fused(false).no_grad();
    }
    let mut enc = BatchNorm::set_training(Encoder4Editing::new(&es.root(&device), encoder)?, true);
    let (gkeys, ekeys) = (gs.param_keys(), es.param_keys());
    let (gbound, ebound) = (gs.finish()?, es.finish()?);
    let (mut gopt, mut eopt) = (AdamConfig::new().with_beta_2(0.99).init(), AdamConfig::new().with_beta_2(0.99).init());
    let size = generator.size;
    for step in start..config.steps {
        let x = synth_batch(
            config.first_index + (step * config.batch) as u64,
            config.batch,
            size,
            &config.forgeries,
            &device,
        );
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
        let values = [
            host_vec(pixel.without_autodiff())?[0],
            host_vec(multiscale.without_autodiff())?[0],
            host_vec(delta.without_autodiff())?[0],
        ];
        let mut grads = loss.backward();
        let lr = learning_rate(config.learning_rate, step, config.steps);
        let ge = GradientsParams::from_module(&mut grads, &enc);
        enc = eopt.step(lr, enc, ge);
        if config.train_generator {
            let gg = GradientsParams::from_module(&mut grads, &synthesis);
            synthesis = gopt.step(lr, synthesis, gg);
        }
        let snapshot = || {
            Ok(join_inverter(
                &export_params(&synthesis, gbound.clone(), &gkeys)?,
                &export_params(&enc, ebound.clone(), &ekeys)?,
            ))
        };
        on_step(&InverterStep { step, pixel: values[0], multiscale: values[1], delta: values[2] }, &snapshot)?;
    }
    Ok((export_params(&synthesis, gbound, &gkeys)?, export_params(&enc, ebound, &ekeys)?))
}

/// A detector's batch: the forged train-split faces of `pairs` (pair i is train image 2·i + 1),
/// each beside its pristine capture (fake: false, true, false, true, …). Real and fake then differ only in the
/// forgery, as FaceForensics' videos do, so a detector cannot separate them by identity.
/// Also returns each image's altered-pixel mask (all false for the pristine ones).
pub fn paired_batch(
    pairs: &[u64],
    size: usize,
    forgeries: &ForgeryStrength,
    device: &Device,
) -> (Tensor<4>, Vec<bool>, Vec<Vec<bool>>) {
    let mut planar = Vec::with_capacity(pairs.len() * 2 * 3 * size * size);
    let mut masks = Vec::with_capacity(pairs.len() * 2);
    for &pair in pairs {
        // Odd train indices are the forgeries.
        let s = Sample::generate_with(Split::Train, 2 * pair + 1, size, forgeries);
        planar.extend(s.pristine.to_planar());
        planar.extend(s.image.to_planar());
        masks.push(vec![false; size * size]);
        masks.push(s.mask.iter().map(|m| *m != 0).collect());
    }
    let n = pairs.len() * 2;
    (
        Tensor::from_data(TensorData::new(planar, [n, 3, size, size]), device),
        (0..n).map(|i| i % 2 == 1).collect(),
        masks,
    )
}

/// Cross-entropy of `[N, 2]` logits against 0 (real) / 1 (fake) targets, averaged.
fn cross_entropy(logits: Tensor<2>, fake: &[bool]) -> Tensor<1> {
    let n = fake.len();
    let one_hot: Vec<f32> = fake.iter().flat_map(|&f| [(!f) as u8 as f32, f as u8 as f32]).collect();
    let target = Tensor::<2>::from_data(TensorData::new(one_hot, [n, 2]), &logits.device());
    (burn::tensor::activation::log_softmax(logits, 1) * target).sum().neg() / n as f32
}

/// The head applied at every position of the last feature map: `[B·h·w, 2]` logits whose mean
/// over positions is the image's logits (every head here is pointwise, a global mean, then
/// linear), so supervising them tells the detector where a forgery is without new weights.
fn positional_logits(detector: &crate::networks::Detector, features: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = features.dims();
    detector.head(features.permute([0, 2, 3, 1]).reshape([b * h * w, c, 1, 1]))
}

/// `batch` consecutive train-split images from `first` at `size` px, in [-1, 1], real and fake.
pub fn synth_batch(first: u64, batch: usize, size: usize, forgeries: &ForgeryStrength, device: &Device) -> Tensor<4> {
    let planar: Vec<f32> = (0..batch as u64)
        .flat_map(|i| Sample::generate_with(Split::Train, first + i, size, forgeries).image.to_planar())
        .collect();
    Tensor::from_data(TensorData::new(planar, [batch, 3, size, size]), device)
}

/// Trains the detector `entry` describes on the synthetic train split (cross-entropy, Adam, the
/// [`learning_rate`] schedule, BatchNorm on batch statistics) and returns its weights by key.
/// With `reconstructions`, the share of each batch `config` asks for is shown reconstructed
/// (in whole pairs, at the batch's end).
/// `resume` continues a run; `on_step` sees every step and may save the snapshot it is handed.
pub fn train_detector(
    entry: &NetworkEntry,
    config: &DetectorTraining,
    resume: Option<Resume>,
    reconstructions: Option<Reconstructions>,
    mut on_step: impl FnMut(&TrainStep, Snapshot) -> Result<()>,
) -> Result<TensorFile> {
    config.validate()?;
    if let Some(Reconstructions::Pool(pool)) = reconstructions
        && (pool.pairs() == 0 || pool.size != entry.input_size)
    {
        return Err(Error::config(format!(
            "the reconstruction pool holds {} pairs at {} px; the detector needs at least one at {} px",
            pool.pairs(),
            pool.size,
            entry.input_size
        )));
    }
    let device = Device::flex().autodiff();
    let (start, source) = match resume {
        Some(r) => (r.step, WeightSource::checkpoint(r.weights, format!("{} checkpoint", entry.name))),
        None => (0, WeightSource::seeded(config.seed)),
    };
    let mut model = BatchNorm::set_training(build_detector(entry, &source.root(&device))?, true);
    let keys = source.param_keys();
    let bound = source.finish()?;
    let mut optim = AdamConfig::new().init();
    let size = entry.input_size;
    // The images at the end of each batch are the reconstructed ones, in whole pairs (a pristine
    // face raw beside its forgery reconstructed would teach "reconstructed means fake").
    let reconstructed = reconstructions.map_or(0, |_| 2 * config.reconstructed_pairs());
    for step in start..config.steps {
        let pairs: Vec<u64> = (0..config.batch / 2)
            .map(|p| (step * config.batch / 2 + p) as u64)
            .map(|i| config.first_index + config.distinct_pairs.map_or(i, |n| i % n))
            .collect();
        let keep = config.batch - reconstructed;
        // Pristine, forged, pristine, forged…, as `paired_batch` lays them out.
        let fake: Vec<bool> = (0..config.batch).map(|i| i % 2 == 1).collect();
        let (x, masks) = match reconstructions.filter(|_| reconstructed > 0) {
            None => {
                let (x, _, masks) = paired_batch(&pairs, size, &config.forgeries, &device);
                (x, masks)
            }
            Some(source) => {
                // The batch's last pairs, reconstructed (or, from a pool, replaced by its pairs).
                let (rec, rec_masks) = match source {
                    Reconstructions::Pool(pool) => {
                        let chosen: Vec<usize> =
                            (0..reconstructed / 2).map(|j| (step * reconstructed / 2 + j) % pool.pairs()).collect();
                        pool.batch(&chosen, &device)
                    }
                    Reconstructions::Inverted(r) => {
                        let (x, _, masks) = paired_batch(&pairs[keep / 2..], size, &config.forgeries, &device);
                        (r.reconstruct(x, &device), masks)
                    }
                };
                if keep == 0 {
                    (rec, rec_masks)
                } else {
                    let (raw, _, mut masks) = paired_batch(&pairs[..keep / 2], size, &config.forgeries, &device);
                    masks.extend(rec_masks);
                    (Tensor::cat(vec![raw, rec], 0), masks)
                }
            }
        };
        let features = model.features(x);
        let logits = model.head(features.clone());
        let mut loss = cross_entropy(logits.clone(), &fake);
        if config.location_weight > 0.0 {
            let [_, _, h, _] = features.dims();
            let cells: Vec<bool> = masks.iter().flat_map(|m| crate::metrics::downsample_mask(m, size, h)).collect();
            loss = loss + cross_entropy(positional_logits(&model, features), &cells) * config.location_weight;
        }
        let predicted = host_vec(logits.clone().without_autodiff())?;
        let right = fake.iter().enumerate().filter(|(i, f)| (predicted[i * 2 + 1] > predicted[i * 2]) == **f).count();
        let loss_value = host_vec(loss.clone().without_autodiff())?[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(learning_rate(config.learning_rate, step, config.steps), model, grads);
        let snapshot = || export_params(&model, bound.clone(), &keys);
        on_step(&TrainStep { step, loss: loss_value, accuracy: right as f32 / config.batch as f32 }, &snapshot)?;
    }
    export_params(&model, bound, &keys)
}

/// A tensor's values on the host: the search's readback (the CPU backend answers at once).
fn host_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    crate::readback::block_on_ready(crate::readback::read_vec(t))
}

/// The checkpoint a builder bound, with every trainable parameter and running statistic replaced
/// by its value in `module` (matched by parameter id, written under its original key).
pub fn export_params<M: Module>(
    module: &M,
    mut bound: TensorFile,
    keys: &BTreeMap<ParamId, String>,
) -> Result<TensorFile> {
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
    // `valid` folds the running statistics a training forward left pending into their values.
    module.valid().visit(&mut visitor);
    if visitor.problems.is_empty() { Ok(bound) } else { Err(Error::Backend(visitor.problems.join("; "))) }
}

/// The zoo's scores on the first `count` test-split images with forgeries at `forgeries`
/// (see [`crate::eval::ZooScores`]).
pub fn test_scores(
    zoo: &crate::zoo::Zoo,
    size: usize,
    forgeries: &ForgeryStrength,
    count: u64,
) -> Result<crate::eval::ZooScores> {
    let samples = (0..count).map(|i| Sample::generate_with(Split::Test, i, size, forgeries)).map(|s| {
        let kind = match s.label {
            Label::Real => None,
            Label::Fake(kind) => Some(kind.name().to_string()),
        };
        (s.image, kind)
    });
    crate::readback::block_on(crate::eval::ZooScores::measure(zoo, samples, &crate::inversion::PivotalTuning::off()))
}

//! The identity network (ArcFace's IR-SE) trained on the synthetic world's people, so that the
//! ID metric and the ID regulariser measure identity and not an untrained network's whims.
//!
//! ArcFace's own loss needs a classifier row per identity of a fixed data set; the synthetic
//! world has an endless supply of people, so each batch holds two shots of each of its
//! identities and the loss is the batch-contrastive one (each face must pick its own person's
//! other shot among every face of the batch, by cosine similarity over a temperature).

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Resume, Snapshot, export_params, host_vec, learning_rate};
use crate::error::{Error, Result};
use crate::metrics::auroc;
use crate::networks::arcface::{ArcFace, ArcFaceConfig};
use crate::networks::layers::BatchNorm;
use crate::synth::{Sample, Split};
use crate::weights::{TensorFile, WeightSource};

/// Settings of an identity network's training run.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityTraining {
    pub steps: usize,
    /// People per batch (two shots each).
    pub identities: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Side of the rendered faces (the zoo's image size); the network sees e4e's crop of them.
    pub image_size: usize,
    /// Softmax temperature over cosine similarities.
    pub temperature: f32,
}

impl IdentityTraining {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::config(format!("identity training: {what}")));
        if self.steps == 0 {
            return bad("needs at least one step".into());
        }
        if self.identities < 2 {
            return bad(format!("needs at least two people per batch, got {}", self.identities));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!("the learning rate must be positive, got {}", self.learning_rate));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!("the temperature must be positive, got {}", self.temperature));
        }
        Ok(())
    }
}

/// What an identity training step saw (before the update).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityStep {
    pub step: usize,
    pub loss: f32,
    /// Share of faces whose most similar other face is their own person's other shot.
    pub accuracy: f32,
}

/// Two shots of each person of `people` (indices into `split`): `[2·P, 3, S, S]` in [-1, 1],
/// shots `first_shot` and `first_shot + 1` of a person side by side.
pub fn identity_batch(split: Split, people: &[u64], first_shot: u64, size: usize, device: &Device) -> Tensor<4> {
    let planar: Vec<f32> = people
        .iter()
        .flat_map(|&p| {
            [first_shot, first_shot + 1].map(|shot| Sample::identity_capture(split, p, shot, size).to_planar())
        })
        .flatten()
        .collect();
    Tensor::from_data(TensorData::new(planar, [people.len() * 2, 3, size, size]), device)
}

/// The batch-contrastive loss of unit embeddings `[2·P, D]` whose rows 2p and 2p + 1 are one
/// person, and the share of rows whose nearest other row is their partner.
fn contrastive(embeddings: Tensor<2>, temperature: f32) -> Result<(Tensor<1>, f32)> {
    let [n, _] = embeddings.dims();
    let device = embeddings.device();
    let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let eye = Tensor::<2>::from_data(TensorData::new(eye, [n, n]), &device);
    // A face is never its own match.
    let similarity = embeddings.clone().matmul(embeddings.transpose()) / temperature - eye * 1e4;
    let partner: Vec<f32> = (0..n * n).map(|i| if i % n == (i / n) ^ 1 { 1.0 } else { 0.0 }).collect();
    let partner = Tensor::<2>::from_data(TensorData::new(partner, [n, n]), &device);
    let values = host_vec(similarity.clone().without_autodiff())?;
    let right = (0..n).filter(|&i| {
        let row = &values[i * n..(i + 1) * n];
        let best = (0..n).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(i);
        best == i ^ 1
    });
    let accuracy = right.count() as f32 / n as f32;
    Ok(((log_softmax(similarity, 1) * partner).sum().neg() / n as f32, accuracy))
}

/// Trains the identity network `config` describes on the train split's people (new people
/// every step, two shots each) and returns its weights under ArcFace's key names. The
/// BatchNorms use batch statistics. `resume` continues a run; `on_step` sees every step.
pub fn train_identity(
    config: &ArcFaceConfig,
    training: &IdentityTraining,
    resume: Option<Resume>,
    mut on_step: impl FnMut(&IdentityStep, Snapshot) -> Result<()>,
) -> Result<TensorFile> {
    training.validate()?;
    let device = Device::flex().autodiff();
    let (start, source) = match resume {
        Some(r) => (r.step, WeightSource::checkpoint(r.weights, "identity checkpoint")),
        None => (0, WeightSource::seeded(training.seed)),
    };
    let mut model = BatchNorm::set_training(ArcFace::new(&source.root(&device), config)?, true);
    let keys = source.param_keys();
    let bound = source.finish()?;
    let mut optim = AdamConfig::new().init();
    for step in start..training.steps {
        let people: Vec<u64> = (0..training.identities).map(|p| (step * training.identities + p) as u64).collect();
        let x = identity_batch(Split::Train, &people, 1, training.image_size, &device);
        let (loss, accuracy) = contrastive(model.embed_aligned(x), training.temperature)?;
        let loss_value = host_vec(loss.clone().without_autodiff())?[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(learning_rate(training.learning_rate, step, training.steps), model, grads);
        let snapshot = || export_params(&model, bound.clone(), &keys);
        on_step(&IdentityStep { step, loss: loss_value, accuracy }, &snapshot)?;
    }
    export_params(&model, bound, &keys)
}

/// How well an identity network tells people apart: two shots of each of `people` test-split
/// people, genuine pairs (one person) against impostor pairs (two people).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityScores {
    pub people: usize,
    /// Mean cosine similarity of a person's two shots.
    pub genuine_mean: f32,
    /// Mean cosine similarity of two different people's shots.
    pub impostor_mean: f32,
    /// AUROC of the cosine similarity for "same person".
    pub verification_auc: f64,
}

impl IdentityScores {
    pub fn measure(net: &ArcFace, people: u64, image_size: usize, device: &Device) -> Result<Self> {
        if people < 2 {
            return Err(Error::config("identity scores need at least two people"));
        }
        let ids: Vec<u64> = (0..people).collect();
        let e = net.embed_aligned(identity_batch(Split::Test, &ids, 0, image_size, device));
        let [n, _] = e.dims();
        let sim = host_vec(e.clone().matmul(e.transpose()))?;
        let (mut scores, mut same) = (Vec::new(), Vec::new());
        for i in 0..n {
            for j in i + 1..n {
                scores.push(sim[i * n + j]);
                same.push(i / 2 == j / 2);
            }
        }
        let mean = |want: bool| {
            let v: Vec<f32> = scores.iter().zip(&same).filter(|(_, s)| **s == want).map(|(c, _)| *c).collect();
            v.iter().sum::<f32>() / v.len() as f32
        };
        let verification_auc =
            auroc(&scores, &same).ok_or_else(|| Error::config("identity scores need genuine and impostor pairs"))?;
        Ok(Self { people: people as usize, genuine_mean: mean(true), impostor_mean: mean(false), verification_auc })
    }
}

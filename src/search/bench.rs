//! The search step as the benchmarks time it, the same for `unforge bench` and the page's
//! `bench.html`: rosinality's generator and Artifact-Eraser's Xception with keyed weights (the
//! parity fixtures' rule, so no checkpoint is needed), a fixed W+, batch 1.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::Loss;
use super::latent::Objective;
use crate::error::{Error, Result};
use crate::networks::stylegan2::{Generator, GeneratorConfig};
use crate::networks::xception::{Xception, XceptionConfig};
use crate::networks::{Detector, DetectorNet, Normalization};
use crate::readback::read_vec;
use crate::rng::SeededRng;
use crate::weights::WeightSource;

/// The networks and the W+ of one benchmarked step.
pub struct StepBench {
    /// The fused form, as built; the search runs `generator.clone().with_fused(false)`.
    pub generator: Generator,
    pub detector: Detector,
    pub latent: Tensor<3>,
}

impl StepBench {
    /// A `size` px generator at `channel_multiplier` and Xception at `detector_size` px.
    pub fn new(size: usize, channel_multiplier: usize, detector_size: usize, device: &Device) -> Result<Self> {
        let cfg = GeneratorConfig::rosinality(size, channel_multiplier);
        cfg.validate()?;
        if detector_size == 0 || !size.is_multiple_of(detector_size) {
            return Err(Error::config(format!(
                "detector size {detector_size}: use a side dividing the generator's {size}"
            )));
        }
        let source = WeightSource::keyed(1);
        let generator = Generator::new(&source.root(device), &cfg)?;
        let net = Xception::new(&source.root(device), &XceptionConfig::original(2))?;
        let detector = Detector {
            net: DetectorNet::Xception(net),
            input_size: detector_size,
            normalization: Normalization::MinusOneOne,
        };
        let rows = cfg.n_latent();
        let values = SeededRng::new(2).normals(rows * cfg.style_dim);
        let latent = Tensor::from_data(TensorData::new(values, [1, rows, cfg.style_dim]), device);
        Ok(Self { generator, detector, latent })
    }

    /// One whole search step through `generator` (forward, backward to W+, sign update),
    /// finished: the updated W+ read back, as the search loop reads its step's numbers.
    pub async fn step(&self, generator: &Generator) -> Result<()> {
        let objective = Objective::new(generator, &self.detector, 0.0, Loss::Mse);
        let (_, _, grad) = objective.gradient(&self.latent);
        read_vec((self.latent.clone() - grad.sign() * 1e-3).reshape([-1])).await.map(|_| ())
    }

    /// What the step computes, read back, to compare across precisions or backends.
    pub async fn probe(&self, generator: &Generator) -> Result<Probe> {
        let objective = Objective::new(generator, &self.detector, 0.0, Loss::Mse);
        let (_, p, grad) = objective.gradient(&self.latent);
        Ok(Probe { p_fake: read_vec(p).await?[0], gradient: read_vec(grad).await? })
    }
}

/// P(fake) at the benchmark's W+ and the search loss's gradient to it (row-major).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Probe {
    pub p_fake: f32,
    pub gradient: Vec<f32>,
}

/// How far one probe is from a reference: what a search step would do differently.
#[derive(Clone, Copy, Debug)]
pub struct ProbeDifference {
    /// |P(fake) − P(fake) of the reference|.
    pub p_fake: f32,
    /// Cosine between the gradients.
    pub cosine: f64,
    /// Share of W+ entries whose step (the gradient's sign) is the reference's.
    pub sign_agreement: f64,
    /// ‖g − g_ref‖ / ‖g_ref‖.
    pub relative_error: f64,
}

impl Probe {
    pub fn difference(&self, reference: &Probe) -> Result<ProbeDifference> {
        let (a, b) = (&self.gradient, &reference.gradient);
        if a.len() != b.len() {
            return Err(Error::config(format!(
                "the probes' gradients have {} and {} entries: compare probes of the same networks",
                a.len(),
                b.len()
            )));
        }
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&u, &v)| u as f64 * v as f64).sum::<f64>();
        let (ab, aa, bb) = (dot(a, b), dot(a, a), dot(b, b));
        let diff = a.iter().zip(b).map(|(&u, &v)| (u as f64 - v as f64).powi(2)).sum::<f64>();
        let same_sign = a.iter().zip(b).filter(|(u, v)| u.signum() == v.signum()).count();
        Ok(ProbeDifference {
            p_fake: (self.p_fake - reference.p_fake).abs(),
            cosine: ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE),
            sign_agreement: same_sign as f64 / a.len().max(1) as f64,
            relative_error: (diff / bb.max(f64::MIN_POSITIVE)).sqrt(),
        })
    }
}

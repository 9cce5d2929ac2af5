//! The search step as the benchmarks time it, the same for `unforge bench` and the page's
//! `bench.html`: rosinality's generator and Artifact-Eraser's Xception with keyed weights (the
//! parity fixtures' rule, so no checkpoint is needed), a fixed W+, batch 1.

use burn::tensor::{Device, Tensor, TensorData};

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
}

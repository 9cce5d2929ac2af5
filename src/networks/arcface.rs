//! ArcFace IR-SE-50 (TreB1eN's `Backbone(112, 50, 'ir_se')`, the e4e ID-loss network):
//! 512-d unit-norm face embeddings, and the e4e crop that feeds it.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::module::adaptive_avg_pool2d;
use serde::{Deserialize, Serialize};

use super::irse::{IrSeBackbone, IrSeConfig};
use super::layers::{BatchNorm, Linear};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcFaceConfig {
    pub backbone: IrSeConfig,
    /// 112 (7×7 after the body) in the original.
    pub input_size: usize,
    pub embedding: usize,
}

impl ArcFaceConfig {
    pub fn ir_se_50() -> Self {
        Self { backbone: IrSeConfig::ir_se_50(), input_size: 112, embedding: 512 }
    }

    pub fn validate(&self) -> Result<()> {
        self.backbone.validate()?;
        if !self.input_size.is_multiple_of(16) {
            return Err(Error::config(format!("ArcFace input size {} must be a multiple of 16", self.input_size)));
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
pub struct ArcFace {
    pub backbone: IrSeBackbone,
    /// `output_layer.0`: BatchNorm2d over the body's output.
    pub output_bn: BatchNorm,
    /// `output_layer.3`: Linear over the C-major flattening.
    pub output_linear: Linear,
    /// `output_layer.4`: BatchNorm1d.
    pub output_bn1d: BatchNorm,
    pub input_size: usize,
}

impl ArcFace {
    pub fn new(vb: &VarBuilder, cfg: &ArcFaceConfig) -> Result<Self> {
        cfg.validate()?;
        let c = cfg.backbone.stages[3].0;
        let side = cfg.input_size / 16;
        let out = vb.pp("output_layer");
        Ok(Self {
            backbone: IrSeBackbone::new(vb, &cfg.backbone)?,
            output_bn: BatchNorm::new(&out.pp(0), c, 1e-5),
            output_linear: Linear::new(&out.pp(3), c * side * side, cfg.embedding),
            output_bn1d: BatchNorm::new(&out.pp(4), cfg.embedding, 1e-5),
            input_size: cfg.input_size,
        })
    }

    /// Faces `[B, 3, input_size, input_size]` in [-1, 1] → unit-norm embeddings `[B, 512]`.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        let last = self.backbone.body.len() - 1;
        let body = self.backbone.forward_taps(x, &[last]).remove(0);
        let [b, c, h, w] = body.dims();
        let x = self.output_bn.forward(body).reshape([b, c * h * w]);
        let x = self.output_bn1d.forward(self.output_linear.forward(x));
        let norm = x.clone().square().sum_dim(1).sqrt();
        x / norm
    }

    /// The e4e ID-loss view of a face `[B, 3, S, S]` in [-1, 1]: for S = 256 rows 35..223,
    /// columns 32..220 (scaled with S otherwise), then adaptive average pooling to the input
    /// size (overlapping bins, not a resize).
    pub fn embed_aligned(&self, x: Tensor<4>) -> Tensor<2> {
        let s = x.dims()[2];
        let scale = |v: usize| (v * s + 128) / 256;
        let crop = x.narrow(2, scale(35), scale(188)).narrow(3, scale(32), scale(188));
        self.embed(adaptive_avg_pool2d(crop, [self.input_size, self.input_size]))
    }

    /// Cosine similarity `[B]` of the faces in `a` and `b` (the e4e ID score).
    pub fn similarity(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
        let n = a.dims()[0];
        (self.embed_aligned(a) * self.embed_aligned(b)).sum_dim(1).reshape([n])
    }
}

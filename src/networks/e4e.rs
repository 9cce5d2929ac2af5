//! The e4e encoder (`Encoder4Editing`): an IR-SE backbone, a feature pyramid and one
//! `GradualStyleBlock` per W+ row, predicting `w0` plus per-row offsets.
//!
//! The encoder is only ever run forward (the search differentiates the generator and the
//! detector, never the encoder), so the pyramid's bilinear upsampling is allowed here.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use super::irse::{IrSeBackbone, IrSeConfig};
use super::layers::{Conv2d, ConvSpec};
use super::stylegan2::EqualLinear;
use crate::error::{Error, Result};
use crate::weights::{Init, VarBuilder};

/// Which encoder of the pSp family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderVariant {
    /// e4e: `w0` from the first head, every other head adds an offset to it.
    #[default]
    Encoder4Editing,
    /// pSp: every head predicts its row on its own.
    GradualStyleEncoder,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    #[serde(default)]
    pub variant: EncoderVariant,
    pub backbone: IrSeConfig,
    /// Side of the (square) input image; 256 in the original.
    pub input_size: usize,
    /// Rows of W+ (the generator's `n_latent`).
    pub n_latent: usize,
    pub style_dim: usize,
    /// Heads below this index read the coarsest features (3 in the original).
    pub coarse_ind: usize,
    /// Heads below this index read the middle features (7 in the original).
    pub middle_ind: usize,
}

impl EncoderConfig {
    /// `Encoder4Editing(50, 'ir_se')` for a generator of `stylegan_size`.
    pub fn e4e(stylegan_size: usize) -> Self {
        Self {
            variant: EncoderVariant::Encoder4Editing,
            backbone: IrSeConfig::ir_se_50(),
            input_size: 256,
            n_latent: 2 * stylegan_size.trailing_zeros() as usize - 2,
            style_dim: 512,
            coarse_ind: 3,
            middle_ind: 7,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.backbone.validate()?;
        if !self.input_size.is_multiple_of(16) || self.input_size < 32 {
            return Err(Error::config(format!(
                "encoder input size {} must be a multiple of 16, ≥ 32",
                self.input_size
            )));
        }
        if self.n_latent < 2 || self.coarse_ind > self.middle_ind {
            return Err(Error::config("encoder rows: need n_latent ≥ 2 and coarse_ind ≤ middle_ind"));
        }
        Ok(())
    }
}

/// `GradualStyleBlock(in_c, out_c, spatial)`: stride-2 convs down to 1×1 (LeakyReLU 0.01),
/// then an `EqualLinear`.
#[derive(Module, Debug)]
pub struct GradualStyleBlock {
    pub convs: Vec<Conv2d>,
    pub linear: EqualLinear,
}

impl GradualStyleBlock {
    pub fn new(vb: &VarBuilder, in_c: usize, out_c: usize, spatial: usize) -> Self {
        let num_pools = spatial.trailing_zeros() as usize;
        let convs = (0..num_pools)
            .map(|i| {
                let cin = if i == 0 { in_c } else { out_c };
                Conv2d::new(&vb.pp("convs").pp(2 * i), ConvSpec::new(cin, out_c, 3).stride(2).padding(1))
            })
            .collect();
        Self { convs, linear: EqualLinear::new(&vb.pp("linear"), out_c, out_c, 0.0, 1.0, false) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.convs.iter().fold(x, |x, conv| leaky_relu(conv.forward(x), 0.01));
        let [b, c, _, _] = x.dims();
        self.linear.forward(x.reshape([b, c]))
    }
}

#[derive(Module, Debug)]
pub struct Encoder4Editing {
    pub backbone: IrSeBackbone,
    pub styles: Vec<GradualStyleBlock>,
    pub latlayer1: Conv2d,
    pub latlayer2: Conv2d,
    /// `latent_avg` `[n_latent, style_dim]`, added to the prediction (`start_from_latent_avg`).
    pub latent_avg: Param<Tensor<2>>,
    pub taps: Vec<usize>,
    pub coarse_ind: usize,
    pub middle_ind: usize,
    #[module(skip)]
    pub variant: EncoderVariant,
}

impl Encoder4Editing {
    pub fn new(vb: &VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        cfg.validate()?;
        let enc = vb.pp("encoder");
        let backbone = IrSeBackbone::new(&enc, &cfg.backbone)?;
        let depth = |s: usize| cfg.backbone.stages[s].0;
        let c3 = depth(3);
        let styles = (0..cfg.n_latent)
            .map(|i| {
                let spatial = if i < cfg.coarse_ind {
                    cfg.input_size / 16
                } else if i < cfg.middle_ind {
                    cfg.input_size / 8
                } else {
                    cfg.input_size / 4
                };
                GradualStyleBlock::new(&enc.pp("styles").pp(i), c3, cfg.style_dim, spatial)
            })
            .collect();
        let ends = cfg.backbone.stage_ends();
        Ok(Self {
            backbone,
            styles,
            latlayer1: Conv2d::new(&enc.pp("latlayer1"), ConvSpec::new(depth(2), c3, 1)),
            latlayer2: Conv2d::new(&enc.pp("latlayer2"), ConvSpec::new(depth(1), c3, 1)),
            latent_avg: vb.param("latent_avg", [cfg.n_latent, cfg.style_dim], Init::Zeros),
            taps: vec![ends[1], ends[2], ends[3]],
            coarse_ind: cfg.coarse_ind,
            middle_ind: cfg.middle_ind,
            variant: cfg.variant,
        })
    }

    fn upsample_add(x: Tensor<4>, y: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = y.dims();
        let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(true).with_output_size([h, w]);
        interpolate(x, opts) + y
    }

    /// Image `[B, 3, S, S]` in [-1, 1] → W+ `[B, n_latent, style_dim]` (with `latent_avg`).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let feats = self.backbone.forward_taps(x, &self.taps);
        let (c1, c2, c3) = (feats[0].clone(), feats[1].clone(), feats[2].clone());
        let w0 = self.styles[0].forward(c3.clone());
        let [b, sd] = w0.dims();
        let n = self.styles.len();
        let p2 = Self::upsample_add(c3.clone(), self.latlayer1.forward(c2));
        let p1 = Self::upsample_add(p2.clone(), self.latlayer2.forward(c1));
        let mut rows = vec![w0.clone()];
        for (i, head) in self.styles.iter().enumerate().skip(1) {
            let features = if i < self.coarse_ind {
                c3.clone()
            } else if i < self.middle_ind {
                p2.clone()
            } else {
                p1.clone()
            };
            let row = head.forward(features);
            rows.push(match self.variant {
                EncoderVariant::Encoder4Editing => w0.clone() + row,
                EncoderVariant::GradualStyleEncoder => row,
            });
        }
        let w = Tensor::stack::<3>(rows, 1);
        w + self.latent_avg.val().reshape([1, n, sd]).expand([b, n, sd])
    }
}

//! ResNet as torchvision's `resnet.py` (`BasicBlock` for ResNet-18/34, `Bottleneck` for
//! ResNet-50 and up), with its state-dict names: `conv1`, `bn1`, `layer1.0.conv1`, …,
//! `layer2.0.downsample.0`, `fc`; a detector is one with a two-class `fc`. Checkpoints that
//! wrap the layers in an `nn.Sequential` (numbered keys) need renaming first.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use serde::{Deserialize, Serialize};

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

/// The residual block kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResnetBlock {
    /// Two 3×3 convolutions (expansion 1).
    Basic,
    /// 1×1, 3×3 (strided, as torchvision ≥ 0.3), 1×1 (expansion 4).
    Bottleneck,
}

impl ResnetBlock {
    fn expansion(self) -> usize {
        match self {
            ResnetBlock::Basic => 1,
            ResnetBlock::Bottleneck => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResnetConfig {
    pub block: ResnetBlock,
    /// Blocks in `layer1` … `layer4` (ResNet-18: 2 2 2 2; -34 and -50: 3 4 6 3).
    pub layers: [usize; 4],
    /// `conv1`'s width, doubled at each layer (64 in torchvision).
    pub width: usize,
    pub num_classes: usize,
}

impl ResnetConfig {
    pub fn resnet18(num_classes: usize) -> Self {
        Self { block: ResnetBlock::Basic, layers: [2, 2, 2, 2], width: 64, num_classes }
    }

    pub fn resnet34(num_classes: usize) -> Self {
        Self { block: ResnetBlock::Basic, layers: [3, 4, 6, 3], width: 64, num_classes }
    }

    pub fn resnet50(num_classes: usize) -> Self {
        Self { block: ResnetBlock::Bottleneck, layers: [3, 4, 6, 3], width: 64, num_classes }
    }

    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.layers.contains(&0) || self.num_classes < 2 {
            return Err(Error::config(
                "resnet width and every layer's block count must be positive, and num_classes ≥ 2",
            ));
        }
        Ok(())
    }

    /// Channels out of the last layer (the features the head pools).
    pub fn feature_channels(&self) -> usize {
        self.width * 8 * self.block.expansion()
    }
}

/// One residual block of either kind; `convs[i]` / `bns[i]` are `conv{i+1}` / `bn{i+1}`.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub convs: Vec<Conv2d>,
    pub bns: Vec<BatchNorm>,
    /// `downsample.0` (1×1 strided conv) and `downsample.1` (BN) where the shape changes.
    pub downsample: Option<(Conv2d, BatchNorm)>,
}

impl ResidualBlock {
    pub fn new(vb: &VarBuilder, kind: ResnetBlock, in_ch: usize, planes: usize, stride: usize) -> Self {
        let out_ch = planes * kind.expansion();
        let specs = match kind {
            ResnetBlock::Basic => vec![
                ConvSpec::new(in_ch, planes, 3).stride(stride).padding(1).no_bias(),
                ConvSpec::new(planes, planes, 3).padding(1).no_bias(),
            ],
            ResnetBlock::Bottleneck => vec![
                ConvSpec::new(in_ch, planes, 1).no_bias(),
                ConvSpec::new(planes, planes, 3).stride(stride).padding(1).no_bias(),
                ConvSpec::new(planes, out_ch, 1).no_bias(),
            ],
        };
        let convs = specs.iter().enumerate().map(|(i, s)| Conv2d::new(&vb.pp(format!("conv{}", i + 1)), *s)).collect();
        let bns = specs
            .iter()
            .enumerate()
            .map(|(i, s)| BatchNorm::new(&vb.pp(format!("bn{}", i + 1)), s.out_ch, 1e-5))
            .collect();
        let downsample = (stride != 1 || in_ch != out_ch).then(|| {
            let d = vb.pp("downsample");
            (
                Conv2d::new(&d.pp(0), ConvSpec::new(in_ch, out_ch, 1).stride(stride).no_bias()),
                BatchNorm::new(&d.pp(1), out_ch, 1e-5),
            )
        });
        Self { convs, bns, downsample }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut out = x.clone();
        for (i, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            out = bn.forward(conv.forward(out));
            if i < last {
                out = relu(out);
            }
        }
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward(conv.forward(x)),
            None => x,
        };
        relu(out + identity)
    }
}

#[derive(Module, Debug)]
pub struct Resnet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    /// `layer1` … `layer4`.
    pub layers: Vec<Vec<ResidualBlock>>,
    pub fc: Linear,
}

impl Resnet {
    pub fn new(vb: &VarBuilder, cfg: &ResnetConfig) -> Result<Self> {
        cfg.validate()?;
        let mut in_ch = cfg.width;
        let mut layers = Vec::with_capacity(4);
        for (l, &blocks) in cfg.layers.iter().enumerate() {
            let planes = cfg.width << l;
            let stride = if l == 0 { 1 } else { 2 };
            let layer = vb.pp(format!("layer{}", l + 1));
            let mut row = Vec::with_capacity(blocks);
            for b in 0..blocks {
                row.push(ResidualBlock::new(&layer.pp(b), cfg.block, in_ch, planes, if b == 0 { stride } else { 1 }));
                in_ch = planes * cfg.block.expansion();
            }
            layers.push(row);
        }
        Ok(Self {
            conv1: Conv2d::new(&vb.pp("conv1"), ConvSpec::new(3, cfg.width, 7).stride(2).padding(3).no_bias()),
            bn1: BatchNorm::new(&vb.pp("bn1"), cfg.width, 1e-5),
            layers,
            fc: Linear::new(&vb.pp("fc"), cfg.feature_channels(), cfg.num_classes),
        })
    }

    /// The stages a CAM can look at: the stem (`maxpool`'s output) and `layer1` … `layer4`
    /// (the last, `features`' output).
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once("maxpool".to_string()).chain((1..=4).map(|l| format!("layer{l}"))).collect()
    }

    pub fn stage_count(&self) -> usize {
        5
    }

    pub fn stage(&self, index: usize, x: Tensor<4>) -> Tensor<4> {
        match index {
            0 => {
                let x = relu(self.bn1.forward(self.conv1.forward(x)));
                max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]).with_padding([1, 1]))
            }
            l => self.layers[l - 1].iter().fold(x, |x, block| block.forward(x)),
        }
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        (0..self.stage_count()).fold(x, |x, i| self.stage(i, x))
    }

    /// `avgpool` (global mean), `flatten`, `fc`.
    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = features.dims();
        self.fc.forward(features.mean_dims(&[2, 3]).reshape([b, c]))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

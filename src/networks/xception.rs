//! Xception (the cadene/tstandley port used by Artifact-Eraser and DeepfakeBench):
//! separable convolutions in residual blocks, logits `[B, num_classes]`.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use serde::{Deserialize, Serialize};

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

/// Which published checkpoint layout the keys follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XceptionLayout {
    /// Artifact-Eraser's bare state dict (`last_linear`, no `fc`).
    #[default]
    ArtifactEraser,
    /// DeepfakeBench's backbone, which always registers the unused `adjust_channel`
    /// (Conv2d(2048, 512, 1) + BN) and is saved under `backbone.`.
    DeepfakeBench,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XceptionConfig {
    /// Widths: conv1, conv2, block1, block2, block3 (= middle), last block, conv3, conv4.
    /// The original is `[32, 64, 128, 256, 728, 1024, 1536, 2048]`.
    pub widths: [usize; 8],
    /// Middle-flow blocks (8 in the original: block4 … block11).
    pub middle_blocks: usize,
    pub num_classes: usize,
    #[serde(default)]
    pub layout: XceptionLayout,
}

impl XceptionConfig {
    pub fn original(num_classes: usize) -> Self {
        Self {
            widths: [32, 64, 128, 256, 728, 1024, 1536, 2048],
            middle_blocks: 8,
            num_classes,
            layout: XceptionLayout::ArtifactEraser,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.widths.contains(&0) || self.num_classes < 2 {
            return Err(Error::config("xception widths must be positive and num_classes ≥ 2"));
        }
        Ok(())
    }
}

/// `SeparableConv2d`: depthwise `conv1` then 1×1 `pointwise`, no bias, nothing between.
#[derive(Module, Debug)]
pub struct SeparableConv2d {
    pub conv1: Conv2d,
    pub pointwise: Conv2d,
}

impl SeparableConv2d {
    pub fn new(vb: &VarBuilder, in_ch: usize, out_ch: usize) -> Self {
        Self {
            conv1: Conv2d::new(&vb.pp("conv1"), ConvSpec::new(in_ch, in_ch, 3).padding(1).groups(in_ch).no_bias()),
            pointwise: Conv2d::new(&vb.pp("pointwise"), ConvSpec::new(in_ch, out_ch, 1).no_bias()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise.forward(self.conv1.forward(x))
    }
}

/// `Block(in, out, reps, stride, start_with_relu, grow_first)`.
#[derive(Module, Debug)]
pub struct Block {
    pub skip: Option<(Conv2d, BatchNorm)>,
    pub rep: Vec<(SeparableConv2d, BatchNorm)>,
    pub start_with_relu: bool,
    pub stride: usize,
}

impl Block {
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        reps: usize,
        stride: usize,
        start_with_relu: bool,
        grow_first: bool,
    ) -> Self {
        let skip = (out_ch != in_ch || stride != 1).then(|| {
            (
                Conv2d::new(&vb.pp("skip"), ConvSpec::new(in_ch, out_ch, 1).stride(stride).no_bias()),
                BatchNorm::new(&vb.pp("skipbn"), out_ch, 1e-5),
            )
        });
        // ReLUs hold no weights but take Sequential indices, so the first separable conv
        // sits at `rep.1` unless the block starts without a ReLU.
        let mut index = 0;
        let mut rep = Vec::with_capacity(reps);
        for j in 0..reps {
            let (cin, cout) = match (grow_first, j) {
                (true, 0) => (in_ch, out_ch),
                (true, _) => (out_ch, out_ch),
                (false, j) if j + 1 == reps => (in_ch, out_ch),
                (false, _) => (in_ch, in_ch),
            };
            if j > 0 || start_with_relu {
                index += 1;
            }
            let sep = SeparableConv2d::new(&vb.pp("rep").pp(index), cin, cout);
            let bn = BatchNorm::new(&vb.pp("rep").pp(index + 1), cout, 1e-5);
            index += 2;
            rep.push((sep, bn));
        }
        Self { skip, rep, start_with_relu, stride }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut out = x.clone();
        for (j, (sep, bn)) in self.rep.iter().enumerate() {
            if j > 0 || self.start_with_relu {
                out = relu(out);
            }
            out = bn.forward(sep.forward(out));
        }
        if self.stride != 1 {
            let opts = MaxPoolOptions::new([3, 3]).with_stride([self.stride; 2]).with_padding([1, 1]);
            out = max_pool2d(out, opts);
        }
        let skip = match &self.skip {
            Some((conv, bn)) => bn.forward(conv.forward(x)),
            None => x,
        };
        out + skip
    }
}

#[derive(Module, Debug)]
pub struct Xception {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub blocks: Vec<Block>,
    pub conv3: SeparableConv2d,
    pub bn3: BatchNorm,
    pub conv4: SeparableConv2d,
    pub bn4: BatchNorm,
    pub last_linear: Linear,
    /// DeepfakeBench's `adjust_channel`: loaded so checkpoints bind strictly, never run.
    pub adjust_channel: Option<(Conv2d, BatchNorm)>,
}

impl Xception {
    pub fn new(vb: &VarBuilder, cfg: &XceptionConfig) -> Result<Self> {
        cfg.validate()?;
        let [c1, c2, b1, b2, mid, last, c3, c4] = cfg.widths;
        let mut blocks = vec![
            Block::new(&vb.pp("block1"), c2, b1, 2, 2, false, true),
            Block::new(&vb.pp("block2"), b1, b2, 2, 2, true, true),
            Block::new(&vb.pp("block3"), b2, mid, 2, 2, true, true),
        ];
        for m in 0..cfg.middle_blocks {
            blocks.push(Block::new(&vb.pp(format!("block{}", 4 + m)), mid, mid, 3, 1, true, true));
        }
        blocks.push(Block::new(&vb.pp(format!("block{}", 4 + cfg.middle_blocks)), mid, last, 2, 2, true, false));
        Ok(Self {
            conv1: Conv2d::new(&vb.pp("conv1"), ConvSpec::new(3, c1, 3).stride(2).no_bias()),
            bn1: BatchNorm::new(&vb.pp("bn1"), c1, 1e-5),
            conv2: Conv2d::new(&vb.pp("conv2"), ConvSpec::new(c1, c2, 3).no_bias()),
            bn2: BatchNorm::new(&vb.pp("bn2"), c2, 1e-5),
            blocks,
            conv3: SeparableConv2d::new(&vb.pp("conv3"), last, c3),
            bn3: BatchNorm::new(&vb.pp("bn3"), c3, 1e-5),
            conv4: SeparableConv2d::new(&vb.pp("conv4"), c3, c4),
            bn4: BatchNorm::new(&vb.pp("bn4"), c4, 1e-5),
            last_linear: Linear::new(&vb.pp("last_linear"), c4, cfg.num_classes),
            adjust_channel: (cfg.layout == XceptionLayout::DeepfakeBench).then(|| {
                let a = vb.pp("adjust_channel");
                (Conv2d::new(&a.pp(0), ConvSpec::new(c4, 512, 1)), BatchNorm::new(&a.pp(1), 512, 1e-5))
            }),
        })
    }

    /// The stages a CAM can look at, input side first, by their PyTorch module names: the
    /// entry convolutions, each block, `conv3` and `conv4` (the last, `features`' output).
    pub fn stage_names(&self) -> Vec<String> {
        let blocks = (1..=self.blocks.len()).map(|i| format!("block{i}"));
        std::iter::once("conv2".to_string()).chain(blocks).chain(["conv3".into(), "conv4".into()]).collect()
    }

    /// How many stages `stage_names` lists.
    pub fn stage_count(&self) -> usize {
        self.blocks.len() + 3
    }

    /// One stage of `features`.
    pub fn stage(&self, index: usize, x: Tensor<4>) -> Tensor<4> {
        let nb = self.blocks.len();
        match index {
            0 => {
                let x = relu(self.bn1.forward(self.conv1.forward(x)));
                relu(self.bn2.forward(self.conv2.forward(x)))
            }
            i if i <= nb => self.blocks[i - 1].forward(x),
            i if i == nb + 1 => relu(self.bn3.forward(self.conv3.forward(x))),
            _ => self.bn4.forward(self.conv4.forward(x)),
        }
    }

    /// The feature map before the head (`features` in the PyTorch module), for Grad-CAM.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        (0..self.stage_count()).fold(x, |x, i| self.stage(i, x))
    }

    /// The head: ReLU, global average pool, `last_linear`.
    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = features.dims();
        let pooled = relu(features).mean_dims(&[2, 3]).reshape([b, c]);
        self.last_linear.forward(pooled)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

//! EfficientNet detectors, in the two layouts deepfake work uses: DeepfakeBench's
//! `efficientnetb4` (efficientnet_pytorch 0.7.1 keys, static "same" pads computed for the
//! assumed 380-px input, and its plain padding-0 stem) and Artifact-Eraser's timm
//! `tf_efficientnet_b4_ns` / `b7_ns` (timm keys, "same" pads computed from the real input).

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::{sigmoid, silu};
use serde::{Deserialize, Serialize};

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear, same_pad};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

const BN_EPS: f64 = 1e-3;
/// B0's stages: repeats, kernel, stride, expansion, in, out (all with SE 0.25).
const BASE: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EfficientNetLayout {
    /// DeepfakeBench: `efficientnet.<efficientnet_pytorch key>` + `last_layer`.
    DeepfakeBench,
    /// Artifact-Eraser: `encoder.<timm key>` (with the unused `classifier`) + `fc`.
    ArtifactEraserTimm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficientNetConfig {
    pub width: f32,
    pub depth: f32,
    pub layout: EfficientNetLayout,
    pub num_classes: usize,
    /// The image size the static pads of the DeepfakeBench layout were computed for.
    pub assumed_size: usize,
}

impl EfficientNetConfig {
    pub fn b4(layout: EfficientNetLayout) -> Self {
        Self { width: 1.4, depth: 1.8, layout, num_classes: 2, assumed_size: 380 }
    }

    pub fn b7(layout: EfficientNetLayout) -> Self {
        Self { width: 2.0, depth: 3.1, layout, num_classes: 2, assumed_size: 600 }
    }

    /// `round_filters`: width-scaled, rounded to a multiple of 8, never more than 10% down.
    pub fn round_filters(&self, c: usize) -> usize {
        let m = c as f32 * self.width;
        let mut new = (8.0f32).max(((m + 4.0) as usize / 8 * 8) as f32) as usize;
        if (new as f32) < 0.9 * m {
            new += 8;
        }
        new
    }

    pub fn round_repeats(&self, r: usize) -> usize {
        (self.depth * r as f32).ceil() as usize
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.width > 0.0 && self.depth > 0.0) || self.num_classes < 2 {
            return Err(Error::config("efficientnet: width and depth must be positive, num_classes ≥ 2"));
        }
        Ok(())
    }
}

/// Where a convolution's padding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamePad {
    /// Fixed at construction from an assumed input size (efficientnet_pytorch).
    Static { top: (usize, usize), left: (usize, usize) },
    /// From the real input size at every call (timm `Conv2dSame`).
    Dynamic,
    /// No padding (DeepfakeBench's replacement stem).
    None,
}

fn conv_same(conv: &Conv2d, x: Tensor<4>, pad: SamePad) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [_, _, kh, kw] = conv.weight.dims();
    let (ph, pw) = match pad {
        SamePad::Static { top, left } => (top, left),
        SamePad::Dynamic => (same_pad(h, kh, conv.stride), same_pad(w, kw, conv.stride)),
        SamePad::None => ((0, 0), (0, 0)),
    };
    conv.forward_padded(x, [ph, pw])
}

/// MBConv (or, with expansion 1, the depthwise-separable block of the first stage).
#[derive(Module, Debug)]
pub struct MbConv {
    pub expand: Option<(Conv2d, BatchNorm)>,
    pub depthwise: Conv2d,
    pub bn_depthwise: BatchNorm,
    pub se_reduce: Conv2d,
    pub se_expand: Conv2d,
    pub project: Conv2d,
    pub bn_project: BatchNorm,
    #[module(skip)]
    pub pad: SamePad,
    pub residual: bool,
}

struct BlockSpec {
    kernel: usize,
    stride: usize,
    expansion: usize,
    in_ch: usize,
    out_ch: usize,
}

impl MbConv {
    fn new(vb: &VarBuilder, b: &BlockSpec, timm: bool, pad: SamePad) -> Self {
        let exp = b.in_ch * b.expansion;
        let reduced = ((b.in_ch as f32 * 0.25) as usize).max(1);
        let names: [&str; 8] = match (timm, b.expansion == 1) {
            (false, _) => {
                ["_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_se_reduce", "_se_expand", "_project_conv", "_bn2"]
            }
            (true, false) => {
                ["conv_pw", "bn1", "conv_dw", "bn2", "se.conv_reduce", "se.conv_expand", "conv_pwl", "bn3"]
            }
            (true, true) => ["", "", "conv_dw", "bn1", "se.conv_reduce", "se.conv_expand", "conv_pw", "bn2"],
        };
        let at = |name: &str| name.split('.').fold(vb.clone(), |v, part| v.pp(part));
        Self {
            expand: (b.expansion != 1).then(|| {
                (
                    Conv2d::new(&at(names[0]), ConvSpec::new(b.in_ch, exp, 1).no_bias()),
                    BatchNorm::new(&at(names[1]), exp, BN_EPS),
                )
            }),
            depthwise: Conv2d::new(
                &at(names[2]),
                ConvSpec::new(exp, exp, b.kernel).stride(b.stride).groups(exp).no_bias(),
            ),
            bn_depthwise: BatchNorm::new(&at(names[3]), exp, BN_EPS),
            se_reduce: Conv2d::new(&at(names[4]), ConvSpec::new(exp, reduced, 1)),
            se_expand: Conv2d::new(&at(names[5]), ConvSpec::new(reduced, exp, 1)),
            project: Conv2d::new(&at(names[6]), ConvSpec::new(exp, b.out_ch, 1).no_bias()),
            bn_project: BatchNorm::new(&at(names[7]), b.out_ch, BN_EPS),
            pad,
            residual: b.stride == 1 && b.in_ch == b.out_ch,
        }
    }

    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some((conv, bn)) = &self.expand {
            x = silu(bn.forward(conv.forward(x)));
        }
        x = silu(self.bn_depthwise.forward(conv_same(&self.depthwise, x, self.pad)));
        let s = silu(self.se_reduce.forward(x.clone().mean_dims(&[2, 3])));
        x = x * sigmoid(self.se_expand.forward(s));
        x = self.bn_project.forward(self.project.forward(x));
        if self.residual { x + input } else { x }
    }
}

#[derive(Module, Debug)]
pub struct EfficientNet {
    pub stem: Conv2d,
    pub bn_stem: BatchNorm,
    pub blocks: Vec<MbConv>,
    pub head: Conv2d,
    pub bn_head: BatchNorm,
    /// timm's ImageNet `classifier`, kept so Artifact-Eraser checkpoints bind strictly; unused.
    pub imagenet_classifier: Option<Linear>,
    /// `last_layer` (DeepfakeBench) or `fc` (Artifact-Eraser).
    pub classifier: Linear,
    #[module(skip)]
    pub stem_pad: SamePad,
}

impl EfficientNet {
    pub fn new(vb: &VarBuilder, cfg: &EfficientNetConfig) -> Result<Self> {
        cfg.validate()?;
        let timm = cfg.layout == EfficientNetLayout::ArtifactEraserTimm;
        let inner = vb.pp(if timm { "encoder" } else { "efficientnet" });
        let stem_ch = cfg.round_filters(32);
        let head_ch = cfg.round_filters(1280);
        let mut blocks = Vec::new();
        // efficientnet_pytorch's static pads follow the assumed size through the strides.
        let mut assumed = cfg.assumed_size.div_ceil(2);
        let mut flat = 0;
        for (stage, &(r, k, s, e, cin, cout)) in BASE.iter().enumerate() {
            let (cin, cout) = (cfg.round_filters(cin), cfg.round_filters(cout));
            for i in 0..cfg.round_repeats(r) {
                let spec = BlockSpec {
                    kernel: k,
                    stride: if i == 0 { s } else { 1 },
                    expansion: e,
                    in_ch: if i == 0 { cin } else { cout },
                    out_ch: cout,
                };
                let (pad, vbb) = if timm {
                    (SamePad::Dynamic, inner.pp("blocks").pp(stage).pp(i))
                } else {
                    let p = same_pad(assumed, k, spec.stride);
                    (SamePad::Static { top: p, left: p }, inner.pp("_blocks").pp(flat))
                };
                blocks.push(MbConv::new(&vbb, &spec, timm, pad));
                if i == 0 {
                    assumed = assumed.div_ceil(s);
                }
                flat += 1;
            }
        }
        let last = cfg.round_filters(BASE[6].5);
        let n = |p: &str, t: &str| if timm { t.to_string() } else { p.to_string() };
        Ok(Self {
            stem: Conv2d::new(
                &inner.pp(n("_conv_stem", "conv_stem")),
                ConvSpec::new(3, stem_ch, 3).stride(2).no_bias(),
            ),
            bn_stem: BatchNorm::new(&inner.pp(n("_bn0", "bn1")), stem_ch, BN_EPS),
            blocks,
            head: Conv2d::new(&inner.pp(n("_conv_head", "conv_head")), ConvSpec::new(last, head_ch, 1).no_bias()),
            bn_head: BatchNorm::new(&inner.pp(n("_bn1", "bn2")), head_ch, BN_EPS),
            imagenet_classifier: timm.then(|| Linear::new(&inner.pp("classifier"), head_ch, 1000)),
            classifier: Linear::new(&vb.pp(if timm { "fc" } else { "last_layer" }), head_ch, cfg.num_classes),
            stem_pad: if timm { SamePad::Dynamic } else { SamePad::None },
        })
    }

    /// The stages a CAM can look at, input side first: the stem, each MBConv block (flat
    /// index) and the head convolution (the last, `features`' output).
    pub fn stage_names(&self) -> Vec<String> {
        let blocks = (0..self.blocks.len()).map(|i| format!("blocks.{i}"));
        std::iter::once("stem".to_string()).chain(blocks).chain(std::iter::once("conv_head".to_string())).collect()
    }

    /// How many stages `stage_names` lists.
    pub fn stage_count(&self) -> usize {
        self.blocks.len() + 2
    }

    /// One stage of `features`.
    pub fn stage(&self, index: usize, x: Tensor<4>) -> Tensor<4> {
        match index {
            0 => silu(self.bn_stem.forward(conv_same(&self.stem, x, self.stem_pad))),
            i if i <= self.blocks.len() => self.blocks[i - 1].forward(x),
            _ => silu(self.bn_head.forward(self.head.forward(x))),
        }
    }

    /// The last feature map (after the head conv, BN and swish), for Grad-CAM.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        (0..self.stage_count()).fold(x, |x, i| self.stage(i, x))
    }

    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = features.dims();
        self.classifier.forward(features.mean_dims(&[2, 3]).reshape([b, c]))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

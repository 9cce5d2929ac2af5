//! The IR-SE backbone (`bottleneck_IR_SE` units) shared by the e4e encoder and ArcFace.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use serde::{Deserialize, Serialize};

use super::layers::{BatchNorm, Conv2d, ConvSpec, PRelu};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

/// Stages of `(depth, units)`; IR-SE-50 is `[(64,3), (128,4), (256,14), (512,3)]` after a
/// 64-channel stem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IrSeConfig {
    pub stem: usize,
    pub stages: Vec<(usize, usize)>,
    /// SE reduction (16 in the original).
    pub se_reduction: usize,
}

impl IrSeConfig {
    pub fn ir_se_50() -> Self {
        Self { stem: 64, stages: vec![(64, 3), (128, 4), (256, 14), (512, 3)], se_reduction: 16 }
    }

    pub fn validate(&self) -> Result<()> {
        if self.stages.len() != 4 || self.stages.iter().any(|&(d, n)| d == 0 || n == 0) {
            return Err(Error::config("the IR-SE backbone needs 4 non-empty stages"));
        }
        if self.stages.iter().any(|&(d, _)| d < self.se_reduction) {
            return Err(Error::config("an IR-SE stage is narrower than the SE reduction"));
        }
        Ok(())
    }

    /// Body index of the last unit of each stage (6, 20, 23 for IR-SE-50).
    pub fn stage_ends(&self) -> Vec<usize> {
        self.stages
            .iter()
            .scan(0, |n, &(_, units)| {
                *n += units;
                Some(*n - 1)
            })
            .collect()
    }
}

/// `SEModule(C, r)`: squeeze-and-excitation with bias-free 1×1 convs.
#[derive(Module, Debug)]
pub struct SeModule {
    pub fc1: Conv2d,
    pub fc2: Conv2d,
}

impl SeModule {
    pub fn new(vb: &VarBuilder, channels: usize, reduction: usize) -> Self {
        Self {
            fc1: Conv2d::new(&vb.pp("fc1"), ConvSpec::new(channels, channels / reduction, 1).no_bias()),
            fc2: Conv2d::new(&vb.pp("fc2"), ConvSpec::new(channels / reduction, channels, 1).no_bias()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pooled = x.clone().mean_dims(&[2, 3]);
        let gate = sigmoid(self.fc2.forward(relu(self.fc1.forward(pooled))));
        x * gate
    }
}

/// `bottleneck_IR_SE(in, depth, stride)`: `res_layer(x) + shortcut_layer(x)`, no activation
/// after the sum; the stride sits on the second conv.
#[derive(Module, Debug)]
pub struct BottleneckIrSe {
    pub shortcut: Option<(Conv2d, BatchNorm)>,
    pub bn_in: BatchNorm,
    pub conv1: Conv2d,
    pub prelu: PRelu,
    pub conv2: Conv2d,
    pub bn_out: BatchNorm,
    pub se: SeModule,
    pub stride: usize,
}

impl BottleneckIrSe {
    pub fn new(vb: &VarBuilder, in_ch: usize, depth: usize, stride: usize, se_reduction: usize) -> Self {
        let sc = vb.pp("shortcut_layer");
        let shortcut = (in_ch != depth).then(|| {
            (
                Conv2d::new(&sc.pp(0), ConvSpec::new(in_ch, depth, 1).stride(stride).no_bias()),
                BatchNorm::new(&sc.pp(1), depth, 1e-5),
            )
        });
        let res = vb.pp("res_layer");
        Self {
            shortcut,
            bn_in: BatchNorm::new(&res.pp(0), in_ch, 1e-5),
            conv1: Conv2d::new(&res.pp(1), ConvSpec::new(in_ch, depth, 3).padding(1).no_bias()),
            prelu: PRelu::new(&res.pp(2), depth),
            conv2: Conv2d::new(&res.pp(3), ConvSpec::new(depth, depth, 3).stride(stride).padding(1).no_bias()),
            bn_out: BatchNorm::new(&res.pp(4), depth, 1e-5),
            se: SeModule::new(&res.pp(5), depth, se_reduction),
            stride,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.shortcut {
            Some((conv, bn)) => bn.forward(conv.forward(x.clone())),
            // MaxPool2d(1, stride): plain subsampling.
            None if self.stride > 1 => max_pool2d(x.clone(), MaxPoolOptions::new([1, 1]).with_stride([self.stride; 2])),
            None => x.clone(),
        };
        let r = self.bn_in.forward(x);
        let r = self.prelu.forward(self.conv1.forward(r));
        let r = self.bn_out.forward(self.conv2.forward(r));
        self.se.forward(r) + shortcut
    }
}

/// `input_layer` (conv, BN, PReLU) and `body` (the IR-SE units).
#[derive(Module, Debug)]
pub struct IrSeBackbone {
    pub input_conv: Conv2d,
    pub input_bn: BatchNorm,
    pub input_prelu: PRelu,
    pub body: Vec<BottleneckIrSe>,
}

impl IrSeBackbone {
    pub fn new(vb: &VarBuilder, cfg: &IrSeConfig) -> Result<Self> {
        cfg.validate()?;
        let il = vb.pp("input_layer");
        let mut body = Vec::new();
        let mut in_ch = cfg.stem;
        for &(depth, units) in &cfg.stages {
            for u in 0..units {
                let stride = if u == 0 { 2 } else { 1 };
                body.push(BottleneckIrSe::new(&vb.pp("body").pp(body.len()), in_ch, depth, stride, cfg.se_reduction));
                in_ch = depth;
            }
        }
        Ok(Self {
            input_conv: Conv2d::new(&il.pp(0), ConvSpec::new(3, cfg.stem, 3).padding(1).no_bias()),
            input_bn: BatchNorm::new(&il.pp(1), cfg.stem, 1e-5),
            input_prelu: PRelu::new(&il.pp(2), cfg.stem),
            body,
        })
    }

    /// Runs the stem and the body, returning the outputs after the given body indices.
    pub fn forward_taps(&self, x: Tensor<4>, taps: &[usize]) -> Vec<Tensor<4>> {
        let mut x = self.input_prelu.forward(self.input_bn.forward(self.input_conv.forward(x)));
        let mut out = Vec::with_capacity(taps.len());
        for (i, unit) in self.body.iter().enumerate() {
            x = unit.forward(x);
            if taps.contains(&i) {
                out.push(x.clone());
            }
        }
        out
    }
}

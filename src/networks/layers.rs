//! PyTorch's plain layers with their state-dict names (`weight`, `bias`, `running_mean`, …),
//! shared by the encoder, the detectors and the metric networks.

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use crate::weights::{Init, VarBuilder};

/// `nn.Conv2d` (square kernel, symmetric padding).
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

/// The shape of an `nn.Conv2d`.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    pub fn new(in_ch: usize, out_ch: usize, kernel: usize) -> Self {
        Self { in_ch, out_ch, kernel, stride: 1, padding: 0, groups: 1, bias: true }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

impl Conv2d {
    pub fn new(vb: &VarBuilder, spec: ConvSpec) -> Self {
        // He-uniform: fresh networks keep their activation scale through ReLU stacks,
        // so untrained and freshly initialised detectors still respond to their input.
        let fan_in = spec.in_ch / spec.groups * spec.kernel * spec.kernel;
        let bound = (6.0 / fan_in as f32).sqrt();
        let weight = vb.param(
            "weight",
            [spec.out_ch, spec.in_ch / spec.groups, spec.kernel, spec.kernel],
            Init::Uniform { bound },
        );
        let bias = spec.bias.then(|| vb.param("bias", [spec.out_ch], Init::Uniform { bound }));
        Self { weight, bias, stride: spec.stride, padding: spec.padding, groups: spec.groups }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], self.groups),
        )
    }
}

/// `nn.BatchNorm2d` / `nn.BatchNorm1d` at inference, with running statistics.
#[derive(Module, Debug)]
pub struct BatchNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: Tensor<1>,
    pub running_var: Tensor<1>,
    pub eps: f64,
}

impl BatchNorm {
    pub fn new(vb: &VarBuilder, channels: usize, eps: f64) -> Self {
        Self {
            weight: vb.param("weight", [channels], Init::Ones),
            bias: vb.param("bias", [channels], Init::Zeros),
            running_mean: vb.buffer("running_mean", [channels], Init::Zeros),
            running_var: vb.buffer("running_var", [channels], Init::Ones),
            eps,
        }
    }

    /// Folds the statistics into one scale and shift per channel.
    fn scale_shift(&self) -> (Tensor<1>, Tensor<1>) {
        let scale = self.weight.val() / (self.running_var.clone() + self.eps).sqrt();
        let shift = self.bias.val() - self.running_mean.clone() * scale.clone();
        (scale, shift)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.weight.dims()[0];
        let (scale, shift) = self.scale_shift();
        x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
    }

    pub fn forward_1d(&self, x: Tensor<2>) -> Tensor<2> {
        let c = self.weight.dims()[0];
        let (scale, shift) = self.scale_shift();
        x * scale.reshape([1, c]) + shift.reshape([1, c])
    }
}

/// `nn.PReLU(C)`: a learned slope per channel.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(vb: &VarBuilder, channels: usize) -> Self {
        Self { weight: vb.param("weight", [channels], Init::Constant(0.25)) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.weight.dims()[0];
        let slope = self.weight.val().reshape([1, c, 1, 1]);
        x.clone().clamp_min(0.0) + x.clamp_max(0.0) * slope
    }
}

/// `nn.Linear`, stored as PyTorch does: `weight [out, in]`.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Linear {
    pub fn new(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Self {
        let bound = 1.0 / (in_dim as f32).sqrt();
        Self {
            weight: vb.param("weight", [out_dim, in_dim], Init::Uniform { bound }),
            bias: vb.param("bias", [out_dim], Init::Uniform { bound }),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let out = self.weight.dims()[0];
        x.matmul(self.weight.val().transpose()) + self.bias.val().reshape([1, out])
    }
}

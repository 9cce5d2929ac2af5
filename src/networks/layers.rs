//! PyTorch's plain layers with their state-dict names (`weight`, `bias`, `running_mean`, …),
//! shared by the encoder, the detectors and the metric networks.

use burn::module::{Flag, Module, ModuleMapper, Param, RunningState};
use burn::tensor::Tensor;
use burn::tensor::module::{batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;

use super::conv_grad::conv2d_stride1;
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

/// TF "same" padding for one axis of `n` pixels: `(before, after)`; the odd pixel goes after,
/// as in TensorFlow (EfficientNet's TF ports, BlazeFace).
pub fn same_pad(n: usize, k: usize, s: usize) -> (usize, usize) {
    let total = ((n.div_ceil(s) - 1) * s + k).saturating_sub(n);
    (total / 2, total - total / 2)
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
        let p = self.padding;
        self.forward_padded(x, [(p, p), (p, p)])
    }

    /// The convolution with `(begin, end)` padding per axis (TF "same" pads are uneven). At
    /// stride 1 its input gradient runs as a convolution ([`conv2d_stride1`]).
    pub fn forward_padded(&self, x: Tensor<4>, padding: [(usize, usize); 2]) -> Tensor<4> {
        let bias = self.bias.as_ref().map(|b| b.val());
        if self.stride != 1 {
            let options = ConvOptions::new_with_padding([self.stride; 2], padding, [1, 1], self.groups);
            return conv2d(x, self.weight.val(), bias, options);
        }
        let out = conv2d_stride1(x, self.weight.val(), padding, self.groups);
        match bias {
            Some(b) => {
                let c = b.dims()[0];
                out + b.reshape([1, c, 1, 1])
            }
            None => out,
        }
    }
}

/// `nn.BatchNorm2d` / `nn.BatchNorm1d`. At inference (always, unless training switched the
/// layer on with [`BatchNorm::set_training`]) it normalises with the running statistics; in
/// training, on an autodiff device, with the batch's own and updates the running averages
/// (momentum 0.1, unbiased variance, as PyTorch), written back under `running_mean` /
/// `running_var`.
#[derive(Module, Debug)]
pub struct BatchNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub training: Param<Flag>,
    pub eps: f64,
}

impl BatchNorm {
    const MOMENTUM: f64 = 0.1;

    pub fn new(vb: &VarBuilder, channels: usize, eps: f64) -> Self {
        Self {
            weight: vb.param("weight", [channels], Init::Ones),
            bias: vb.param("bias", [channels], Init::Zeros),
            running_mean: vb.running("running_mean", [channels], Init::Zeros),
            running_var: vb.running("running_var", [channels], Init::Ones),
            training: Param::from_bool(false),
            eps,
        }
    }

    /// Switches every BatchNorm in `module` to batch statistics (`true`) or back.
    pub fn set_training<M: Module>(module: M, on: bool) -> M {
        struct Switch(bool);
        impl ModuleMapper for Switch {
            fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
                flag.with_value(self.0)
            }
        }
        module.map(&mut Switch(on))
    }

    /// `[B, C, …]` in, the same shape out.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.training.is_enabled() && x.device().is_autodiff() {
            return self.forward_batch_statistics(x);
        }
        let mut shape = [1; D];
        shape[1] = self.weight.dims()[0];
        // The statistics folded into one scale and shift per channel.
        let scale = self.weight.val() / (self.running_var.value() + self.eps).sqrt();
        let shift = self.bias.val() - self.running_mean.value() * scale.clone();
        x * scale.reshape(shape) + shift.reshape(shape)
    }

    fn forward_batch_statistics<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        // Values per channel; PyTorch keeps the unbiased variance (n / (n − 1)) as running.
        let n = x.dims().iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, d)| d).product::<usize>() as f64;
        let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let out = batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
        let m = Self::MOMENTUM;
        let mean = self.running_mean.value_sync() * (1.0 - m) + out.mean.detach() * m;
        let var = self.running_var.value_sync() * (1.0 - m) + out.variance.detach() * (m * unbias);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        out.output
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

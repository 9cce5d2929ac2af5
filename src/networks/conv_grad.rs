//! A stride-1 convolution whose input gradient runs as a convolution.
//!
//! Burn's autodiff takes a convolution's input gradient as a transposed convolution, and the
//! CPU backend runs every transposed convolution as a matrix product followed by a scatter of
//! each kernel tap. For a depthwise or a one-channel convolution (Xception's and EfficientNet's
//! separable blocks, StyleGAN2's blur) that scatter is the whole cost: the CPU backend's
//! backward took about 20× its forward (128 channels at 128 px: 5 ms forward, about 100 ms
//! backward). At stride 1 the input gradient is itself a convolution, of the output gradient
//! with the kernel flipped and its channel axes swapped, padded by `k - 1 - p`; this op runs it
//! so, where the backends have their fast direct, depthwise and im2col paths. The weight
//! gradient (when the weights train) is Burn's own.
//!
//! On the CPU a dense convolution and its input gradient run as one matrix product per kernel
//! tap (`conv_taps`), the input gradient reading the forward weight flipped and transposed
//! where it lies; grouped, depthwise, 1 × 1 and few-channel ones keep Flex's own paths.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

use super::conv_taps::{Taps, conv2d_taps};

/// The padding pairs `(begin, end)` per spatial axis and the groups of a stride-1 convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stride1 {
    pub padding: [(usize, usize); 2],
    pub groups: usize,
}

impl Stride1 {
    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new_with_padding([1, 1], self.padding, [1, 1], self.groups)
    }

    /// The input gradient's padding, `k − 1 − p` on each side.
    fn input_gradient_padding<W: burn::backend::TensorMetadata>(&self, weight: &W) -> [(usize, usize); 2] {
        let [_, _, kh, kw] = weight.shape().dims::<4>();
        let [(t, b), (l, r)] = self.padding;
        [(kh - 1 - t, kh - 1 - b), (kw - 1 - l, kw - 1 - r)]
    }
}

#[backend_extension(Flex, Cube: cfg(any(feature = "wgpu", target_arch = "wasm32")), Autodiff)]
pub trait Stride1Conv: Backend {
    /// The convolution itself: the backend's own.
    fn conv2d_stride1(x: FloatTensor<Self>, weight: FloatTensor<Self>, conv: Stride1) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, conv.options())
    }

    /// Its input gradient for the output gradient `grad`: a convolution with the weight
    /// flipped and its channel axes swapped ([`input_gradient`]).
    fn conv2d_stride1_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        conv: Stride1,
    ) -> FloatTensor<Self> {
        input_gradient::<Self>(grad, weight, conv)
    }
}

impl Stride1Conv for Flex {
    /// Dense convolutions as one matrix product per kernel tap (`conv_taps`); the rest Flex's own.
    fn conv2d_stride1(x: FloatTensor<Self>, weight: FloatTensor<Self>, conv: Stride1) -> FloatTensor<Self> {
        conv2d_taps(&x, &weight, Taps::Forward, conv.padding, conv.groups)
            .unwrap_or_else(|| Self::conv2d(x, weight, None, conv.options()))
    }

    /// Dense ones read the forward weight flipped and transposed in place, without a copy.
    fn conv2d_stride1_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        conv: Stride1,
    ) -> FloatTensor<Self> {
        let padding = conv.input_gradient_padding(&weight);
        conv2d_taps(&grad, &weight, Taps::FlippedTransposed, padding, conv.groups)
            .unwrap_or_else(|| input_gradient::<Self>(grad, weight, conv))
    }
}

#[cfg(any(feature = "wgpu", target_arch = "wasm32"))]
impl Stride1Conv for burn::backend::Cube {}

/// The input gradient as a convolution: `weight` `[out, in/g, kh, kw]` becomes
/// `[in, out/g, kh, kw]` flipped, group by group.
fn input_gradient<B: Backend + Stride1Conv>(
    grad: FloatTensor<B>,
    weight: FloatTensor<B>,
    conv: Stride1,
) -> FloatTensor<B> {
    let padding = conv.input_gradient_padding(&weight);
    let [out_ch, in_per_group, kh, kw] = burn::backend::TensorMetadata::shape(&weight).dims::<4>();
    let g = conv.groups;
    let out_per_group = out_ch / g;
    let w = B::float_reshape(weight, [g, out_per_group, in_per_group, kh, kw].into());
    let w = B::float_swap_dims(w, 1, 2);
    let w = B::float_reshape(w, [g * in_per_group, out_per_group, kh, kw].into());
    let w = B::float_flip(w, &[2, 3]);
    B::conv2d_stride1(grad, w, Stride1 { padding, groups: g })
}

#[derive(Debug)]
struct Stride1Backward;

impl<B: Backend + Stride1Conv> Backward<B, 2> for Stride1Backward {
    type State = (NodeId, NodeId, Stride1);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, conv) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::conv2d_stride1_input_grad(grad.clone(), weight.clone(), conv));
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::conv2d_weight_backward(x, weight, grad, conv.options()));
        }
    }
}

impl<B: Backend + Stride1Conv, C: CheckpointStrategy> Stride1Conv for Autodiff<B, C> {
    fn conv2d_stride1(x: FloatTensor<Self>, weight: FloatTensor<Self>, conv: Stride1) -> FloatTensor<Self> {
        match Stride1Backward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = B::conv2d_stride1(x.into_primitive(), weight.into_primitive(), conv);
                prep.finish((x_state, weight_state, conv), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv2d_stride1(x.into_primitive(), weight.into_primitive(), conv))
            }
        }
    }
}

/// `conv2d(x, weight)` at stride 1 without bias, padded by `padding` `(begin, end)` per axis,
/// in `groups`; the same values as Burn's `conv2d`, its input gradient taken as a convolution.
pub fn conv2d_stride1(x: Tensor<4>, weight: Tensor<4>, padding: [(usize, usize); 2], groups: usize) -> Tensor<4> {
    let conv = Stride1 { padding, groups };
    Tensor::from_dispatch(<burn::backend::Dispatch as Stride1Conv>::conv2d_stride1(
        x.into_dispatch(),
        weight.into_dispatch(),
        conv,
    ))
}

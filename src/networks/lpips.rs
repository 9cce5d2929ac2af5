//! LPIPS v0.1 with the AlexNet trunk (the `lpips` package, as e4e and Artifact-Eraser use it):
//! a perceptual distance per image pair.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use super::layers::{Conv2d, ConvSpec};
use crate::weights::VarBuilder;

/// `(slice, torchvision index, in, out, kernel, stride, padding)` of the AlexNet convolutions.
const ALEX: [(usize, usize, usize, usize, usize, usize, usize); 5] = [
    (1, 0, 3, 64, 11, 4, 2),
    (2, 3, 64, 192, 5, 1, 2),
    (3, 6, 192, 384, 3, 1, 1),
    (4, 8, 384, 256, 3, 1, 1),
    (5, 10, 256, 256, 3, 1, 1),
];

#[derive(Module, Debug)]
pub struct Lpips {
    /// `scaling_layer.shift` / `.scale`, fixed constants `[1, 3, 1, 1]`.
    pub shift: Tensor<4>,
    pub scale: Tensor<4>,
    /// `net.slice{k}.{i}`.
    pub convs: Vec<Conv2d>,
    /// `lin{k}.model.1`: 1×1 convs without bias, one per layer.
    pub lins: Vec<Conv2d>,
}

impl Lpips {
    pub fn new(vb: &VarBuilder) -> Self {
        let sl = vb.pp("scaling_layer");
        let convs = ALEX
            .iter()
            .map(|&(s, i, cin, cout, k, st, p)| {
                Conv2d::new(
                    &vb.pp("net").pp(format!("slice{s}")).pp(i),
                    ConvSpec::new(cin, cout, k).stride(st).padding(p),
                )
            })
            .collect();
        let lins = ALEX
            .iter()
            .enumerate()
            .map(|(l, &(_, _, _, cout, _, _, _))| {
                Conv2d::new(&vb.pp(format!("lin{l}")).pp("model").pp(1), ConvSpec::new(cout, 1, 1).no_bias())
            })
            .collect();
        Self {
            shift: sl.constant("shift", [1, 3, 1, 1], vec![-0.030, -0.088, -0.188]),
            scale: sl.constant("scale", [1, 3, 1, 1], vec![0.458, 0.448, 0.450]),
            convs,
            lins,
        }
    }

    /// relu1 … relu5 of AlexNet on ScalingLayer-normalised input.
    fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let pool = |x| max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]));
        let mut x = (x - self.shift.clone()) / self.scale.clone();
        let mut out = Vec::with_capacity(5);
        for (l, conv) in self.convs.iter().enumerate() {
            if l == 1 || l == 2 {
                x = pool(x);
            }
            x = relu(conv.forward(x));
            out.push(x.clone());
        }
        out
    }

    /// Per-pair distance `[B]` between images in [-1, 1] (the package's `[N,1,1,1]`, flattened).
    pub fn forward(&self, x0: Tensor<4>, x1: Tensor<4>) -> Tensor<1> {
        let b = x0.dims()[0];
        // `normalize_tensor`: the eps is added to the channel norm, not inside the root.
        let unit = |f: Tensor<4>| f.clone() / (f.square().sum_dim(1).sqrt() + 1e-10);
        let (f0, f1) = (self.features(x0), self.features(x1));
        let mut total: Option<Tensor<4>> = None;
        for ((a, c), lin) in f0.into_iter().zip(f1).zip(&self.lins) {
            let d = (unit(a) - unit(c)).square();
            let v = lin.forward(d).mean_dims(&[2, 3]);
            total = Some(match total {
                Some(t) => t + v,
                None => v,
            });
        }
        total.expect("five layers").reshape([b])
    }
}

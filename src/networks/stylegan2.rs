//! StyleGAN2 generator, as rosinality's `model.py` (the copy e4e and Artifact-Eraser embed).
//!
//! Key names, shapes and run-time scaling follow the PyTorch module exactly, so a converted
//! `g_ema` state dict loads unchanged. Every op used here has a backward on every Burn
//! backend (no bilinear interpolation): the search differentiates through this network.

use burn::module::{Module, Param};
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::conv_grad::conv2d_stride1;
use crate::error::{Error, Result};
use crate::rng::SeededRng;
use crate::weights::{Init, VarBuilder};

const SQRT_2: f32 = std::f32::consts::SQRT_2;

/// `Generator(size, style_dim, n_mlp, channel_multiplier, blur_kernel=[1,3,3,1], lr_mlp)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Output side in pixels, a power of two ≥ 8 (1024 for FFHQ).
    pub size: usize,
    /// Width of z, w and every style (512 in the original).
    pub style_dim: usize,
    /// Number of mapping layers (8 in the original).
    pub n_mlp: usize,
    /// Channels per resolution, from 4 px up to `size` (one entry per power of two).
    pub channels: Vec<usize>,
    /// Learning-rate multiplier of the mapping network (0.01).
    pub lr_mlp: f32,
}

impl GeneratorConfig {
    /// The rosinality channel table for `size` and `channel_multiplier`.
    pub fn rosinality(size: usize, channel_multiplier: usize) -> Self {
        let table = |res: usize| match res {
            4..=32 => 512,
            64 => 256 * channel_multiplier,
            128 => 128 * channel_multiplier,
            256 => 64 * channel_multiplier,
            512 => 32 * channel_multiplier,
            _ => 16 * channel_multiplier,
        };
        let channels = (2..=size.trailing_zeros()).map(|l| table(1 << l)).collect();
        Self { size, style_dim: 512, n_mlp: 8, channels, lr_mlp: 0.01 }
    }

    pub fn log_size(&self) -> usize {
        self.size.trailing_zeros() as usize
    }

    /// Rows of W+ (`n_latent`): 18 for 1024, 14 for 256.
    pub fn n_latent(&self) -> usize {
        self.log_size() * 2 - 2
    }

    /// Number of StyledConvs and of noise maps.
    pub fn num_layers(&self) -> usize {
        (self.log_size() - 2) * 2 + 1
    }

    pub fn validate(&self) -> Result<()> {
        if !self.size.is_power_of_two() || self.size < 8 {
            return Err(Error::config(format!("generator size {} is not a power of two ≥ 8", self.size)));
        }
        let want = self.log_size() - 1;
        if self.channels.len() != want {
            return Err(Error::config(format!(
                "generator channel table has {} entries, size {} needs {want} (4 px to {} px)",
                self.channels.len(),
                self.size,
                self.size
            )));
        }
        if self.style_dim == 0 || self.channels.contains(&0) {
            return Err(Error::config("generator widths must be positive"));
        }
        Ok(())
    }
}

/// `make_kernel([1,3,3,1])`: the separable FIR kernel normalised to sum 1, times `gain`;
/// and its 1-D factor, whose outer product with itself is that kernel.
fn make_kernel(k1d: &[f32], gain: f32) -> (usize, Vec<f32>, Vec<f32>) {
    let n = k1d.len();
    let sum: f32 = k1d.iter().sum::<f32>().powi(2);
    let k = (0..n * n).map(|i| k1d[i / n] * k1d[i % n] / sum * gain).collect();
    let taps = k1d.iter().map(|t| t / sum.sqrt() * gain.sqrt()).collect();
    (n, k, taps)
}

/// `upfirdn2d` applied per channel: zero-insertion by `up`, padding `(p0, p1)` on both axes,
/// true convolution with `kernel`. Written with plain convolutions on `[B·C, 1, H, W]`
/// so it has a backward everywhere and avoids grouped convolutions. The kernel is separable
/// and runs as a pass along the rows, then one along the columns: 8 taps a pixel instead of
/// 16, and the upsampling's transposed convolution scatters 4 taps instead of 16; the result
/// differs from the 2-D form only by float rounding.
#[derive(Module, Debug)]
pub struct Fir {
    /// The kernel as stored in the state dict, `[kh, kw]`.
    pub kernel: Tensor<2>,
    /// Its 1-D factor as a row kernel, `[1, 1, 1, n]`, in the order its pass reads it: flipped
    /// for the cross-correlation without upsampling, as stored for the transposed one (made
    /// once here, not on every forward).
    pub taps: Tensor<4>,
    pub up: usize,
    pub pad0: usize,
    pub pad1: usize,
}

impl Fir {
    fn new(vb: &VarBuilder, gain: f32, up: usize, pad: (usize, usize)) -> Self {
        let (n, k, mut taps) = make_kernel(&[1.0, 3.0, 3.0, 1.0], gain);
        if up == 1 {
            // Cross-correlation with the flipped kernel is the true convolution.
            taps.reverse();
        }
        Self {
            kernel: vb.constant("kernel", [n, n], k),
            taps: Tensor::from_data(TensorData::new(taps, [1, 1, 1, n]), vb.device()),
            up,
            pad0: pad.0,
            pad1: pad.1,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = self.taps.dims()[3];
        let row = self.taps.clone();
        let column = self.taps.clone().reshape([1, 1, n, 1]);
        let x = x.reshape([b * c, 1, h, w]);
        let out = if self.up == 1 {
            let pad = (self.pad0, self.pad1);
            let pass = |x, k: Tensor<4>, padding| conv2d_stride1(x, k, padding, 1);
            pass(pass(x, row, [(0, 0), pad]), column, [pad, (0, 0)])
        } else {
            // Zero-insertion + padding + convolution is a transposed convolution with the
            // un-flipped kernel and padding `n - 1 - p0`; `padding_out` restores `p1`.
            let up = self.up;
            let p = n - 1 - self.pad0;
            let out_len = |len: usize| len * up + self.pad0 + self.pad1 + 1 - n;
            let tr_len = |len: usize| (len - 1) * up + n - 2 * p;
            let (pad_h, pad_w) = (out_len(h) - tr_len(h), out_len(w) - tr_len(w));
            let x = conv_transpose2d(x, row, None, ConvTransposeOptions::new([1, up], [0, p], [0, pad_w], [1, 1], 1));
            conv_transpose2d(x, column, None, ConvTransposeOptions::new([up, 1], [p, 0], [pad_h, 0], [1, 1], 1))
        };
        let [_, _, ho, wo] = out.dims();
        out.reshape([b, c, ho, wo])
    }
}

/// `PixelNorm`: `x · rsqrt(mean_c(x²) + 1e-8)`.
fn pixel_norm(x: Tensor<2>) -> Tensor<2> {
    let norm = (x.clone().square().mean_dim(1) + 1e-8).sqrt();
    x / norm
}

/// `fused_leaky_relu(x, bias)`: bias first, slope 0.2, gain √2.
fn fused_leaky_relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    burn::tensor::activation::leaky_relu(x, 0.2) * SQRT_2
}

/// `EqualLinear`: raw weights scaled at run time by `lr_mul / √in`.
#[derive(Module, Debug)]
pub struct EqualLinear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    pub scale: f32,
    pub lr_mul: f32,
    pub fused_lrelu: bool,
}

impl EqualLinear {
    pub fn new(vb: &VarBuilder, in_dim: usize, out_dim: usize, bias_init: f32, lr_mul: f32, fused_lrelu: bool) -> Self {
        Self {
            weight: vb.param("weight", [out_dim, in_dim], Init::Normal { std: 1.0 / lr_mul }),
            bias: vb.param("bias", [out_dim], Init::Constant(bias_init)),
            scale: lr_mul / (in_dim as f32).sqrt(),
            lr_mul,
            fused_lrelu,
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let out_dim = self.weight.dims()[0];
        let y = x.matmul((self.weight.val() * self.scale).transpose());
        let y = y + (self.bias.val() * self.lr_mul).reshape([1, out_dim]);
        if self.fused_lrelu { fused_leaky_relu(y) } else { y }
    }
}

/// `ModulatedConv2d`: the style scales the weights' input channels, which are then
/// demodulated to unit norm per output channel.
#[derive(Module, Debug)]
pub struct ModulatedConv2d {
    pub weight: Param<Tensor<5>>,
    pub modulation: EqualLinear,
    pub blur: Option<Fir>,
    pub scale: f32,
    pub demodulate: bool,
    pub upsample: bool,
    /// The "fused" form (the original's default): per-sample modulated weights. Otherwise
    /// rosinality's `fused=False`: the style scales the input, one shared convolution runs, the
    /// demodulation scales the output. The same function (to about 3e-5 in f32); with the
    /// weights frozen, as in a search, the second needs no gradient of a per-sample weight.
    pub fused: bool,
}

impl ModulatedConv2d {
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        style_dim: usize,
        demodulate: bool,
        upsample: bool,
    ) -> Self {
        // Blur after the transposed conv: p = (4 - 2) - (k - 1), pad ((p+1)/2 + 1, p/2 + 1), kernel × 4.
        let blur = upsample.then(|| {
            let p = 3 - kernel as isize;
            let pad = (((p + 1) / 2 + 1) as usize, (p / 2 + 1) as usize);
            Fir::new(&vb.pp("blur"), 4.0, 1, pad)
        });
        Self {
            weight: vb.param("weight", [1, out_ch, in_ch, kernel, kernel], Init::Normal { std: 1.0 }),
            modulation: EqualLinear::new(&vb.pp("modulation"), style_dim, in_ch, 1.0, 1.0, false),
            blur,
            scale: 1.0 / ((in_ch * kernel * kernel) as f32).sqrt(),
            demodulate,
            upsample,
            fused: true,
        }
    }

    pub fn forward(&self, x: Tensor<4>, style: Tensor<2>) -> Tensor<4> {
        if !self.fused {
            return self.forward_shared_weight(x, style);
        }
        let [b, in_ch, _, _] = x.dims();
        let [_, out_ch, _, k, _] = self.weight.dims();
        let s = self.modulation.forward(style).reshape([b, 1, in_ch, 1, 1]);
        let mut w = self.weight.val() * self.scale * s; // [B, out, in, k, k]
        if self.demodulate {
            let d = (w.clone().square().sum_dims(&[2, 3, 4]) + 1e-8).sqrt().recip();
            w = w * d;
        }
        // One convolution per sample: identical to PyTorch's grouped form, and on CPU
        // backends faster than a grouped convolution.
        let outs: Vec<Tensor<4>> = (0..b)
            .map(|i| {
                let xi = x.clone().narrow(0, i, 1);
                let wi = w.clone().narrow(0, i, 1).reshape([out_ch, in_ch, k, k]);
                if self.upsample {
                    let wt = wi.swap_dims(0, 1);
                    conv_transpose2d(xi, wt, None, ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1))
                } else {
                    conv2d_stride1(xi, wi, [(k / 2, k / 2); 2], 1)
                }
            })
            .collect();
        let out = if b == 1 { outs.into_iter().next().expect("one sample") } else { Tensor::cat(outs, 0) };
        match &self.blur {
            Some(blur) => blur.forward(out),
            None => out,
        }
    }

    /// The non-fused form: modulation on the input, one convolution with the shared weight,
    /// demodulation on the output (after the blur, which is linear per channel).
    fn forward_shared_weight(&self, x: Tensor<4>, style: Tensor<2>) -> Tensor<4> {
        let [b, in_ch, _, _] = x.dims();
        let [_, out_ch, _, k, _] = self.weight.dims();
        let s = self.modulation.forward(style); // [B, in]
        let weight = self.weight.val().reshape([out_ch, in_ch, k, k]) * self.scale;
        let x = x * s.clone().reshape([b, in_ch, 1, 1]);
        let out = if self.upsample {
            let wt = weight.clone().swap_dims(0, 1);
            conv_transpose2d(x, wt, None, ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1))
        } else {
            conv2d_stride1(x, weight.clone(), [(k / 2, k / 2); 2], 1)
        };
        let out = match &self.blur {
            Some(blur) => blur.forward(out),
            None => out,
        };
        if !self.demodulate {
            return out;
        }
        // Σ over (in, kh, kw) of (w·s_in)² is Σ_in s_in² · Σ_k w²: one [B, in] × [in, out] product.
        let w2 = weight.square().sum_dims(&[2, 3]).reshape([out_ch, in_ch]).transpose();
        let d = (s.square().matmul(w2) + 1e-8).sqrt().recip();
        out * d.reshape([b, out_ch, 1, 1])
    }
}

/// `StyledConv`: modulated conv, noise injection, fused leaky ReLU with its bias.
#[derive(Module, Debug)]
pub struct StyledConv {
    pub conv: ModulatedConv2d,
    /// `noise.weight`, the per-layer noise strength.
    pub noise_weight: Param<Tensor<1>>,
    /// `activate.bias`.
    pub activate_bias: Param<Tensor<1>>,
}

impl StyledConv {
    pub fn new(vb: &VarBuilder, in_ch: usize, out_ch: usize, style_dim: usize, upsample: bool) -> Self {
        Self {
            conv: ModulatedConv2d::new(&vb.pp("conv"), in_ch, out_ch, 3, style_dim, true, upsample),
            noise_weight: vb.pp("noise").param("weight", [1], Init::Zeros),
            activate_bias: vb.pp("activate").param("bias", [out_ch], Init::Zeros),
        }
    }

    pub fn forward(&self, x: Tensor<4>, style: Tensor<2>, noise: Tensor<4>) -> Tensor<4> {
        let out = self.conv.forward(x, style);
        let out = out + noise * self.noise_weight.val().reshape([1, 1, 1, 1]);
        let c = self.activate_bias.dims()[0];
        fused_leaky_relu(out + self.activate_bias.val().reshape([1, c, 1, 1]))
    }
}

/// `ToRGB`: 1×1 modulated conv without demodulation, a bias, and the upsampled skip.
#[derive(Module, Debug)]
pub struct ToRgb {
    pub conv: ModulatedConv2d,
    pub bias: Param<Tensor<4>>,
    pub upsample: Option<Fir>,
}

impl ToRgb {
    pub fn new(vb: &VarBuilder, in_ch: usize, style_dim: usize, upsample: bool) -> Self {
        Self {
            conv: ModulatedConv2d::new(&vb.pp("conv"), in_ch, 3, 1, style_dim, false, false),
            bias: vb.param("bias", [1, 3, 1, 1], Init::Zeros),
            // Upsample(factor 2): kernel × 4, pad ((p+1)/2 + 1, p/2) with p = 4 - 2.
            upsample: upsample.then(|| Fir::new(&vb.pp("upsample"), 4.0, 2, (2, 1))),
        }
    }

    pub fn forward(&self, x: Tensor<4>, style: Tensor<2>, skip: Option<Tensor<4>>) -> Tensor<4> {
        let out = self.conv.forward(x, style) + self.bias.val();
        match (skip, &self.upsample) {
            (Some(skip), Some(up)) => out + up.forward(skip),
            (Some(skip), None) => out + skip,
            (None, _) => out,
        }
    }
}

/// The whole generator: mapping network, constant input, styled convolutions, ToRGBs
/// and the fixed noise buffers.
#[derive(Module, Debug)]
pub struct Generator {
    /// `style.1` … `style.{n_mlp}` (`style.0` is the parameter-free PixelNorm).
    pub style: Vec<EqualLinear>,
    /// `input.input`.
    pub input: Param<Tensor<4>>,
    pub conv1: StyledConv,
    pub to_rgb1: ToRgb,
    pub convs: Vec<StyledConv>,
    pub to_rgbs: Vec<ToRgb>,
    /// `noises.noise_{i}`, used whenever no other noise is given (deterministic output).
    pub noises: Vec<Tensor<4>>,
    pub n_latent: usize,
    pub style_dim: usize,
    /// Output side in pixels.
    pub size: usize,
    /// The side synthesis stops at: `size`, or a preview's smaller side, where the skip
    /// architecture's RGB output is taken and the layers above are not run.
    pub render_size: usize,
}

impl Generator {
    pub fn new(vb: &VarBuilder, cfg: &GeneratorConfig) -> Result<Self> {
        cfg.validate()?;
        let sd = cfg.style_dim;
        let style =
            (1..=cfg.n_mlp).map(|i| EqualLinear::new(&vb.pp("style").pp(i), sd, sd, 0.0, cfg.lr_mlp, true)).collect();
        let ch = &cfg.channels;
        let input = vb.pp("input").param("input", [1, ch[0], 4, 4], Init::Normal { std: 1.0 });
        let conv1 = StyledConv::new(&vb.pp("conv1"), ch[0], ch[0], sd, false);
        let to_rgb1 = ToRgb::new(&vb.pp("to_rgb1"), ch[0], sd, false);
        let mut convs = Vec::new();
        let mut to_rgbs = Vec::new();
        for level in 1..ch.len() {
            let (cin, cout) = (ch[level - 1], ch[level]);
            let k = level - 1;
            convs.push(StyledConv::new(&vb.pp("convs").pp(2 * k), cin, cout, sd, true));
            convs.push(StyledConv::new(&vb.pp("convs").pp(2 * k + 1), cout, cout, sd, false));
            to_rgbs.push(ToRgb::new(&vb.pp("to_rgbs").pp(k), cout, sd, true));
        }
        let noises = (0..cfg.num_layers())
            .map(|i| {
                let res = 1 << ((i + 5) / 2);
                vb.pp("noises").buffer(&format!("noise_{i}"), [1, 1, res, res], Init::Normal { std: 1.0 })
            })
            .collect();
        Ok(Self {
            style,
            input,
            conv1,
            to_rgb1,
            convs,
            to_rgbs,
            noises,
            n_latent: cfg.n_latent(),
            style_dim: sd,
            size: cfg.size,
            render_size: cfg.size,
        })
    }

    /// The mapping network: z `[B, style_dim]` → w `[B, style_dim]`.
    pub fn map(&self, z: Tensor<2>) -> Tensor<2> {
        self.style.iter().fold(pixel_norm(z), |x, layer| layer.forward(x))
    }

    /// `w_avg + ψ·(w − w_avg)`, applied per style before broadcasting (truncation trick).
    pub fn truncate(w: Tensor<2>, w_avg: Tensor<2>, psi: f32) -> Tensor<2> {
        w_avg.clone() + (w - w_avg) * psi
    }

    /// The mean of `n` mapped z drawn from `seed`: the truncation centre.
    pub fn mean_latent(&self, n: usize, seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = SeededRng::new(seed);
        let sd = self.style_dim;
        let z = Tensor::<2>::from_data(TensorData::new(rng.normals(n * sd), [n, sd]), device);
        self.map(z).mean_dim(0)
    }

    /// One style `[B, style_dim]` repeated to W+ `[B, n_latent, style_dim]`.
    pub fn broadcast(&self, w: Tensor<2>) -> Tensor<3> {
        let [b, sd] = w.dims();
        w.reshape([b, 1, sd]).expand([b, self.n_latent, sd])
    }

    /// Style mixing: rows below `inject_index` from `first`, the rest from `second`.
    pub fn style_mix(&self, first: Tensor<2>, second: Tensor<2>, inject_index: usize) -> Result<Tensor<3>> {
        if inject_index == 0 || inject_index >= self.n_latent {
            return Err(Error::config(format!("inject_index {inject_index} must be in 1..{}", self.n_latent)));
        }
        let a = self.broadcast(first).narrow(1, 0, inject_index);
        let b = self.broadcast(second).narrow(1, inject_index, self.n_latent - inject_index);
        Ok(Tensor::cat(vec![a, b], 1))
    }

    /// This generator with every modulated convolution in the fused form (`true`, per-sample
    /// weights) or the non-fused one (`false`, a shared weight): see [`ModulatedConv2d::fused`].
    pub fn with_fused(mut self, fused: bool) -> Self {
        let styled = std::iter::once(&mut self.conv1).chain(self.convs.iter_mut()).map(|c| &mut c.conv);
        let rgb = std::iter::once(&mut self.to_rgb1).chain(self.to_rgbs.iter_mut()).map(|c| &mut c.conv);
        styled.chain(rgb).for_each(|conv| conv.fused = fused);
        self
    }

    /// This generator rendering at `side` (a power of two from 4 to `size`): synthesis stops at
    /// that resolution's RGB output (the skip sum so far), so the W+ rows of the layers above
    /// it do nothing. A preview for searches whose detectors look at less than the full image.
    pub fn with_render_size(mut self, side: usize) -> Result<Self> {
        if !side.is_power_of_two() || !(4..=self.size).contains(&side) {
            return Err(Error::config(format!(
                "preview size {side}: use a power of two from 4 to the generator's {}",
                self.size
            )));
        }
        self.render_size = side;
        Ok(self)
    }

    /// The W+ rows a rendering at `render_size` reads (the rest change nothing).
    pub fn rows_rendered(&self) -> usize {
        // 4 px (2^2): conv1 and to_rgb1 read rows 0 and 1; each doubling adds two.
        (2 * self.render_size.trailing_zeros() as usize - 2).min(self.n_latent)
    }

    /// Noise maps drawn from `seed`, shaped like the buffers (batch 1, broadcast).
    pub fn seeded_noise(&self, seed: u64, device: &Device) -> Vec<Tensor<4>> {
        let mut rng = SeededRng::new(seed);
        self.noises
            .iter()
            .map(|n| {
                let shape = n.dims();
                Tensor::from_data(TensorData::new(rng.normals(shape.iter().product()), shape), device)
            })
            .collect()
    }

    /// Synthesis from W+ `[B, n_latent, style_dim]` with the fixed noise buffers.
    /// Returns `[B, 3, size, size]`, roughly in [-1, 1], unclamped.
    pub fn synthesize(&self, latent: Tensor<3>) -> Tensor<4> {
        self.synthesize_with_noise(latent, &self.noises)
    }

    pub fn synthesize_with_noise(&self, latent: Tensor<3>, noise: &[Tensor<4>]) -> Tensor<4> {
        let [b, _, sd] = latent.dims();
        let row = |i: usize| latent.clone().narrow(1, i, 1).reshape([b, sd]);
        let [_, c, h, w] = self.input.dims();
        let mut out = self.input.val().expand([b, c, h, w]);
        out = self.conv1.forward(out, row(0), noise[0].clone());
        let mut skip = self.to_rgb1.forward(out.clone(), row(1), None);
        // Odd rows are shared: ToRGB of one resolution and the up-conv of the next read them.
        let mut i = 1;
        // ToRGB `k` renders at 8 · 2^k: those above the render size are not run.
        let rendered = (self.render_size.trailing_zeros() as usize).saturating_sub(2);
        for (k, to_rgb) in self.to_rgbs.iter().enumerate().take(rendered) {
            out = self.convs[2 * k].forward(out, row(i), noise[2 * k + 1].clone());
            out = self.convs[2 * k + 1].forward(out, row(i + 1), noise[2 * k + 2].clone());
            skip = to_rgb.forward(out.clone(), row(i + 2), Some(skip));
            i += 2;
        }
        skip
    }
}

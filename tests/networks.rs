//! Network shapes, FIR resampling against its definition, and determinism.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::*;
use unforge::networks::stylegan2::{Generator, GeneratorConfig};
use unforge::weights::WeightSource;

#[test]
fn shapes_through_the_pipeline() {
    let zoo = tiny_zoo();
    let dev = Device::flex();
    let inv = zoo.inverter().invert(&test_image(40), &dev);
    assert_eq!(inv.latent.dims(), [1, 8, 16]);
    assert_eq!(inv.reconstruction.dims(), [1, 3, 32, 32]);
    let (_, det) = &zoo.detectors[0];
    assert_eq!(det.logits(inv.reconstruction.clone()).dims(), [1, 2]);
    let p = to_vec(det.p_fake(inv.reconstruction));
    assert!(p[0] > 0.0 && p[0] < 1.0);
    // Batches go through every network.
    let batch = Tensor::cat(vec![test_image(32).to_tensor(32, &dev), test_image(64).to_tensor(32, &dev)], 0);
    assert_eq!(zoo.encoder.forward(batch.clone()).dims(), [2, 8, 16]);
    assert_eq!(det.logits(batch).dims(), [2, 2]);
}

#[test]
fn rosinality_config_matches_the_paper_generator() {
    let cfg = GeneratorConfig::rosinality(1024, 2);
    assert_eq!(cfg.n_latent(), 18);
    assert_eq!(cfg.num_layers(), 17);
    assert_eq!(cfg.channels, vec![512, 512, 512, 512, 512, 256, 128, 64, 32]);
    assert_eq!(GeneratorConfig::rosinality(256, 1).n_latent(), 14);
    assert!(GeneratorConfig { size: 48, ..GeneratorConfig::rosinality(64, 1) }.validate().is_err());
}

/// upfirdn2d by its definition: zero-insert, pad, true convolution (ARCH.md §1.2).
fn upfirdn_reference(
    x: &[f32],
    h: usize,
    w: usize,
    k: &[f32],
    kn: usize,
    (up, p0, p1): (usize, usize, usize),
) -> (Vec<f32>, usize, usize) {
    let (uh, uw) = (h * up + p0 + p1, w * up + p0 + p1);
    let mut padded = vec![0f32; uh * uw];
    for i in 0..h {
        for j in 0..w {
            padded[(i * up + p0) * uw + j * up + p0] = x[i * w + j];
        }
    }
    let (oh, ow) = (uh + 1 - kn, uw + 1 - kn);
    let mut out = vec![0f32; oh * ow];
    for y in 0..oh {
        for xx in 0..ow {
            let mut acc = 0f32;
            for a in 0..kn {
                for b in 0..kn {
                    acc += padded[(y + a) * uw + xx + b] * k[(kn - 1 - a) * kn + (kn - 1 - b)];
                }
            }
            out[y * ow + xx] = acc;
        }
    }
    (out, oh, ow)
}

#[test]
fn fir_upsample_and_blur_match_upfirdn2d() {
    let dev = Device::flex();
    let source = WeightSource::seeded(1);
    let g = Generator::new(
        &source.root(&dev),
        &GeneratorConfig { size: 16, style_dim: 8, n_mlp: 1, channels: vec![4, 4, 4], lr_mlp: 0.01 },
    )
    .unwrap();
    let (h, w) = (5, 7);
    let x: Vec<f32> = (0..h * w).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
    let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 1, h, w]), &dev);
    for fir in [g.to_rgbs[0].upsample.as_ref().unwrap(), g.convs[0].conv.blur.as_ref().unwrap()] {
        let k = to_vec(fir.kernel.clone());
        let (want, oh, ow) = upfirdn_reference(&x, h, w, &k, 4, (fir.up, fir.pad0, fir.pad1));
        let got = fir.forward(xt.clone());
        assert_eq!(got.dims(), [1, 1, oh, ow]);
        let got = to_vec(got);
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-5, "up {}: max error {err}", fir.up);
        // The backward of the separable passes is the adjoint of the 2-D definition: for a
        // weighting r of the output, ∂(r · F x)/∂x_i = r · F e_i.
        let r: Vec<f32> = (0..oh * ow).map(|i| ((i * 53 % 17) as f32 - 8.0) / 5.0).collect();
        let rt = Tensor::<4>::from_data(TensorData::new(r.clone(), [1, 1, oh, ow]), &dev);
        let xa = xt.clone().autodiff().require_grad();
        let grads = (fir.forward(xa.clone()) * rt).sum().backward();
        let got = to_vec(xa.grad(&grads).unwrap());
        for (i, g) in got.iter().enumerate() {
            let mut e = vec![0f32; h * w];
            e[i] = 1.0;
            let (column, _, _) = upfirdn_reference(&e, h, w, &k, 4, (fir.up, fir.pad0, fir.pad1));
            let want: f32 = column.iter().zip(&r).map(|(a, b)| a * b).sum();
            assert!((g - want).abs() < 1e-5, "up {}: gradient {i} is {g}, the adjoint gives {want}", fir.up);
        }
    }
    assert_eq!(g.to_rgbs[0].upsample.as_ref().unwrap().forward(xt).dims(), [1, 1, 10, 14]);
}

#[test]
fn same_input_same_bits() {
    let zoo_a = tiny_zoo();
    let zoo_b = tiny_zoo();
    let dev = Device::flex();
    let img = test_image(32);
    let a = to_vec(zoo_a.inverter().invert(&img, &dev).reconstruction);
    let b = to_vec(zoo_b.inverter().invert(&img, &dev).reconstruction);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    // The seeded zoo itself is reproducible byte for byte.
    assert_eq!(tiny_files().1, tiny_files().1);
}

#[test]
fn truncation_and_style_mixing() {
    let zoo = tiny_zoo();
    let dev = Device::flex();
    let g = &zoo.generator;
    let w = g.map(Tensor::from_data(TensorData::new(unforge::rng::SeededRng::new(4).normals(2 * 16), [2, 16]), &dev));
    let avg = g.mean_latent(64, 1, &dev).reshape([1, 16]);
    let same = Generator::truncate(w.clone(), avg.clone(), 1.0);
    assert!(to_vec(same).iter().zip(to_vec(w.clone())).all(|(a, b)| (a - b).abs() < 1e-6));
    let centre = Generator::truncate(w.clone(), avg.clone(), 0.0);
    assert!(to_vec(centre).iter().zip(to_vec(avg.expand([2, 16]))).all(|(a, b)| (a - b).abs() < 1e-6));
    let (a, b) = (w.clone().narrow(0, 0, 1), w.narrow(0, 1, 1));
    let mixed = to_vec(g.style_mix(a.clone(), b.clone(), 3).unwrap());
    let (ra, rb) = (to_vec(a), to_vec(b));
    for row in 0..8 {
        let want = if row < 3 { &ra } else { &rb };
        assert_eq!(&mixed[row * 16..(row + 1) * 16], want.as_slice(), "row {row}");
    }
    assert!(g.style_mix(w_row(&ra), w_row(&rb), 0).is_err());
    assert!(g.style_mix(w_row(&ra), w_row(&rb), 8).is_err());
}

fn w_row(v: &[f32]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &Device::flex())
}

#[test]
fn the_non_fused_modulated_convolution_is_the_fused_one() {
    // Keyed weights (modulation biases near 1, as trained styles are) at 64 px: every kind of
    // layer (4 px input conv, up-convs with their blur, 1×1 ToRGB without demodulation).
    let dev = Device::flex();
    let source = WeightSource::keyed(5);
    let cfg = GeneratorConfig::rosinality(64, 1);
    let fused = Generator::new(&source.root(&dev), &cfg).unwrap();
    let shared = fused.clone().with_fused(false);
    let latent = tensor3(unforge::rng::SeededRng::new(8).normals(cfg.n_latent() * 512), [1, cfg.n_latent(), 512]);
    let (a, b) = (to_vec(fused.synthesize(latent.clone())), to_vec(shared.synthesize(latent.clone())));
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4 * scale.max(1.0), "images differ by {worst} (scale {scale})");
    // The gradient to W+ that the search follows.
    let grad = |g: &Generator| {
        let w = latent.clone().autodiff().require_grad();
        let grads = g.synthesize(w.clone()).square().mean().backward();
        to_vec(w.grad(&grads).unwrap())
    };
    let (ga, gb) = (grad(&fused), grad(&shared));
    let norm = ga.iter().map(|v| v * v).sum::<f32>().sqrt();
    let diff = ga.iter().zip(&gb).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt();
    assert!(norm > 0.0 && diff <= 1e-4 * norm, "gradients differ by {diff} (norm {norm})");
}

#[test]
fn the_stride_one_convolution_has_burns_values_and_gradients() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use unforge::networks::conv_grad::conv2d_stride1;
    let dev = Device::flex();
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n).map(|i| (((i * 31 + seed * 17) % 23) as f32 - 11.0) / 7.0).collect()
    };
    // (channels in, out, groups, kernel, padding, input side): a plain 3 × 3, grouped, depthwise
    // with TF's uneven "same" pads, a 1 × 1, and a one-channel 4-tap row pass on Flex's own
    // kernels; then dense convolutions wide enough for the CPU's per-tap products: "same", uneven
    // pads on a 2 × 4 kernel, none (the input gradient pads by 2 on each side), and a 64 px map
    // cut into bands of rows that run on the threads.
    let cases = [
        (3, 4, 1, [3, 3], [(1, 1), (1, 1)], [7, 6]),
        (4, 6, 2, [3, 3], [(0, 2), (1, 0)], [7, 6]),
        (5, 5, 5, [5, 5], [(1, 2), (2, 1)], [7, 6]),
        (3, 2, 1, [1, 1], [(0, 0), (0, 0)], [7, 6]),
        (1, 1, 1, [1, 4], [(0, 0), (2, 1)], [7, 6]),
        (8, 5, 1, [3, 3], [(1, 1), (1, 1)], [7, 6]),
        (9, 4, 1, [2, 4], [(0, 1), (2, 1)], [7, 6]),
        (12, 8, 1, [3, 3], [(0, 0), (0, 0)], [7, 6]),
        (8, 8, 1, [3, 3], [(1, 1), (1, 1)], [64, 64]),
    ];
    for (cin, cout, groups, [kh, kw], padding, [h, w_]) in cases {
        let x = Tensor::<4>::from_data(TensorData::new(values(2 * cin * h * w_, 1), [2, cin, h, w_]), &dev);
        let w = Tensor::<4>::from_data(
            TensorData::new(values(cout * cin / groups * kh * kw, 2), [cout, cin / groups, kh, kw]),
            &dev,
        );
        let run = |ours: bool| {
            let (xa, wa) = (x.clone().autodiff().require_grad(), w.clone().autodiff().require_grad());
            let y = if ours {
                conv2d_stride1(xa.clone(), wa.clone(), padding, groups)
            } else {
                conv2d(xa.clone(), wa.clone(), None, ConvOptions::new_with_padding([1, 1], padding, [1, 1], groups))
            };
            let [_, _, ho, wo] = y.dims();
            let r = Tensor::<4>::from_data(TensorData::new(values(2 * cout * ho * wo, 3), [2, cout, ho, wo]), &dev)
                .autodiff();
            let grads = (y.clone() * r).sum().backward();
            (to_vec(y.without_autodiff()), to_vec(xa.grad(&grads).unwrap()), to_vec(wa.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        for (name, a, b) in [
            ("value", &ours.0, &burns.0),
            ("input gradient", &ours.1, &burns.1),
            ("weight gradient", &ours.2, &burns.2),
        ] {
            assert_eq!(a.len(), b.len(), "{name} of {cin}→{cout} in {groups} groups");
            let err = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "{name} of {cin}→{cout} in {groups} groups, {kh}×{kw}, {padding:?}: max error {err}");
        }
    }
}

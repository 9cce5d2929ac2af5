//! Fixture access and network builders shared by the parity tests.

use burn::tensor::{Device, Tensor, TensorData};
use unforge::networks::stylegan2::{Generator, GeneratorConfig};
use unforge::networks::xception::{Xception, XceptionConfig};
use unforge::networks::{Detector, DetectorNet, Normalization};
use unforge::search::Objective;
use unforge::weights::{HostTensor, TensorFile, WeightSource};

use super::to_vec;

/// The keyed-weight seed `tools/fixtures/make_fixtures.py` used.
pub const SEED: u64 = 20261126;

pub fn fixture() -> TensorFile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity/keyed.safetensors");
    TensorFile::from_safetensors(&std::fs::read(path).expect("fixture"), path).expect("fixture parses")
}

pub fn tensor<const D: usize>(t: &HostTensor, dev: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data.clone(), t.shape.clone()), dev)
}

/// Max |Δ| relative to the reference's largest magnitude.
pub fn assert_close(ours: &[f32], theirs: &HostTensor, tol: f32, what: &str) {
    assert_eq!(ours.len(), theirs.data.len(), "{what}: size");
    let scale = theirs.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ours.iter().zip(&theirs.data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("{what}: max |Δ| {diff:.3e}, scale {scale:.3e}, relative {:.3e}", diff / scale);
    assert!(scale > 0.0 && diff / scale <= tol, "{what}: max |Δ| {diff} against scale {scale}");
}

pub fn generator(dev: &Device) -> Generator {
    let source = WeightSource::keyed(SEED);
    let g = Generator::new(&source.root(dev), &GeneratorConfig::rosinality(256, 1)).unwrap();
    source.finish().unwrap();
    g
}

pub fn xception(dev: &Device) -> Detector {
    let source = WeightSource::keyed(SEED);
    let net = Xception::new(&source.root(dev), &XceptionConfig::original(2)).unwrap();
    source.finish().unwrap();
    Detector { net: DetectorNet::Xception(net), input_size: 256, normalization: Normalization::MinusOneOne }
}

/// ∇w of MSE(P_fake(D(G(w))), 0) on our side, relative L2 error against torch's float64
/// autograd, and torch's own float32 error for scale.
pub fn gradient_error(dev: &Device) -> (f64, f64) {
    let fx = fixture();
    // The form a search runs: the non-fused modulated convolution (the zoo's), against
    // PyTorch's fused one.
    let (g, det) = (generator(dev).with_fused(false), xception(dev));
    let objective = Objective::new(&g, &det, 0.0, unforge::search::Loss::Mse);
    let (_, p, grad) = objective.gradient(&tensor(&fx.tensors["stylegan2.latent"], dev));
    assert_close(&to_vec(p), &fx.tensors["search.p_fake_f64"], 1e-4, "P(fake)");
    let rel_l2 = |a: &[f32], b: &[f32]| {
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        norm(&mut a.iter().zip(b).map(|(x, y)| (*x - *y) as f64)) / norm(&mut b.iter().map(|y| *y as f64))
    };
    let reference = &fx.tensors["search.grad_f64"].data;
    let ours = rel_l2(&to_vec(grad), reference);
    let torch32 = rel_l2(&fx.tensors["search.grad"].data, reference);
    println!("∇w relative L2 error against torch float64: ours {ours:.3e}, torch float32 {torch32:.3e}");
    (ours, torch32)
}

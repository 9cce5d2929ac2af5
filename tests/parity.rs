//! Parity with the original PyTorch modules (rosinality StyleGAN2, e4e `Encoder4Editing`,
//! Artifact-Eraser Xception) at full size, on fixtures made by `tools/fixtures/make_fixtures.py`.
//! Both sides use the keyed stand-in weights, so the fixture holds only inputs and outputs.

mod common;

use burn::tensor::Device;
use common::parity::*;
use common::to_vec;
use unforge::networks::e4e::{Encoder4Editing, EncoderConfig, EncoderVariant};
use unforge::weights::WeightSource;

#[test]
fn stylegan2_256_synthesis_and_mapping() {
    let (fx, dev) = (fixture(), Device::flex());
    let g = generator(&dev);
    // PyTorch's fixture is the fused form; both of ours match it (the zoo runs the non-fused).
    let image = g.synthesize(tensor(&fx.tensors["stylegan2.latent"], &dev));
    assert_close(&to_vec(image), &fx.tensors["stylegan2.image"], 1e-4, "generator image, fused form");
    let shared = g.clone().with_fused(false).synthesize(tensor(&fx.tensors["stylegan2.latent"], &dev));
    assert_close(&to_vec(shared), &fx.tensors["stylegan2.image"], 1e-4, "generator image, non-fused form");
    let w = g.map(tensor(&fx.tensors["stylegan2.z"], &dev));
    assert_close(&to_vec(w.clone()), &fx.tensors["stylegan2.w"], 1e-4, "mapping w");
    let avg = tensor::<2>(&fx.tensors["stylegan2.w_avg"], &dev);
    let t = |w: burn::tensor::Tensor<2>| unforge::networks::stylegan2::Generator::truncate(w, avg.clone(), 0.7);
    let mixed = g.style_mix(t(w.clone().narrow(0, 0, 1)), t(w.narrow(0, 1, 1)), 5).unwrap();
    assert_close(&to_vec(g.synthesize(mixed)), &fx.tensors["stylegan2.mixed_image"], 1e-4, "mixed, truncated image");
}

#[test]
fn xception_logits() {
    let (fx, dev) = (fixture(), Device::flex());
    let logits = xception(&dev).logits(tensor(&fx.tensors["xception.input"], &dev));
    assert_close(&to_vec(logits), &fx.tensors["xception.logits"], 1e-4, "xception logits");
}

#[test]
fn e4e_and_psp_codes() {
    let (fx, dev) = (fixture(), Device::flex());
    for (variant, key) in
        [(EncoderVariant::Encoder4Editing, "e4e.codes"), (EncoderVariant::GradualStyleEncoder, "psp.codes")]
    {
        let source = WeightSource::keyed(SEED);
        let enc =
            Encoder4Editing::new(&source.root(&dev), &EncoderConfig { variant, ..EncoderConfig::e4e(256) }).unwrap();
        source.finish().unwrap();
        let codes = enc.forward(tensor(&fx.tensors["e4e.input"], &dev));
        assert_close(&to_vec(codes), &fx.tensors[key], 1e-4, key);
    }
}

#[test]
fn search_gradient_in_float32_is_within_float_noise() {
    // Through ~40 layers whose activations reach 20, float32 backward is only good to about
    // 1e-3 (torch's own float32 gradient is 3.7e-4 off its float64 one here).
    let (ours, torch32) = gradient_error(&Device::flex());
    assert!(ours <= 2e-3, "float32 ∇w differs from torch float64 autograd by {ours} (torch float32: {torch32})");
}

#[test]
fn arcface_embedding_of_the_e4e_crop() {
    let (fx, dev) = (fixture(), Device::flex());
    let source = WeightSource::keyed(SEED);
    let net = unforge::networks::arcface::ArcFace::new(
        &source.root(&dev),
        &unforge::networks::arcface::ArcFaceConfig::ir_se_50(),
    )
    .unwrap();
    source.finish().unwrap();
    let emb = net.embed_aligned(tensor(&fx.tensors["arcface.input"], &dev));
    assert_close(&to_vec(emb), &fx.tensors["arcface.embedding"], 1e-4, "arcface embedding");
}

#[test]
fn lpips_alex_distances() {
    let (fx, dev) = (fixture(), Device::flex());
    let source = WeightSource::keyed(SEED);
    let net = unforge::networks::lpips::Lpips::new(&source.root(&dev));
    source.finish().unwrap();
    let d = net.forward(tensor(&fx.tensors["lpips.x0"], &dev), tensor(&fx.tensors["lpips.x1"], &dev));
    assert_close(&to_vec(d), &fx.tensors["lpips.distance"], 1e-4, "lpips");
    let x = tensor::<4>(&fx.tensors["lpips.x0"], &dev);
    assert!(to_vec(net.forward(x.clone(), x)).iter().all(|&v| v == 0.0), "LPIPS(x, x) must be 0");
}

#[test]
fn efficientnet_b4_both_layouts_and_b7() {
    use unforge::networks::efficientnet::{EfficientNet, EfficientNetConfig, EfficientNetLayout};
    let (fx, dev) = (fixture(), Device::flex());
    let b4 = EfficientNetConfig::b4;
    let b7 = EfficientNetConfig::b7;
    for (cfg, key) in [
        (b4(EfficientNetLayout::DeepfakeBench), "efficientnet_dfb_b4.logits"),
        (b4(EfficientNetLayout::ArtifactEraserTimm), "efficientnet_timm_b4.logits"),
        (b7(EfficientNetLayout::ArtifactEraserTimm), "efficientnet_timm_b7.logits"),
    ] {
        let source = WeightSource::keyed(SEED);
        let net = EfficientNet::new(&source.root(&dev), &cfg).unwrap();
        source.finish().unwrap();
        let logits = net.forward(tensor(&fx.tensors["efficientnet.input"], &dev));
        assert_close(&to_vec(logits), &fx.tensors[key], 1e-4, key);
    }
}

#[test]
fn torchvision_resnet18_and_resnet50_logits_and_keys() {
    use unforge::networks::resnet::{Resnet, ResnetConfig};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity/torchvision.safetensors");
    let fx = unforge::weights::TensorFile::from_safetensors(&std::fs::read(path).unwrap(), path).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.replace(".safetensors", ".json")).unwrap()).unwrap();
    let dev = Device::flex();
    for (name, cfg) in [("resnet18", ResnetConfig::resnet18(2)), ("resnet50", ResnetConfig::resnet50(2))] {
        // The same key names and shapes as torchvision's state dict, nothing more or less.
        let shapes = WeightSource::shapes_only();
        Resnet::new(&shapes.root(&dev), &cfg).unwrap();
        let ours: std::collections::BTreeMap<String, Vec<usize>> =
            shapes.finish().unwrap().tensors.into_iter().map(|(k, t)| (k, t.shape)).collect();
        let theirs: std::collections::BTreeMap<String, Vec<usize>> =
            serde_json::from_value(meta["state_dict_keys"][name].clone()).unwrap();
        assert_eq!(ours, theirs, "{name} keys");
        let source = WeightSource::keyed(SEED);
        let net = Resnet::new(&source.root(&dev), &cfg).unwrap();
        source.finish().unwrap();
        let logits = net.forward(tensor(&fx.tensors["resnet.input"], &dev));
        assert_close(&to_vec(logits), &fx.tensors[&format!("{name}.logits")], 1e-4, name);
    }
}

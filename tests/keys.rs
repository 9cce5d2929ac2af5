//! Full-size architectures declare exactly the state-dict keys and shapes of the original
//! PyTorch modules (`../shared/reference/keys/*.tsv`, dumped from the originals).

use std::collections::BTreeMap;

use burn::tensor::Device;
use unforge::networks::e4e::{Encoder4Editing, EncoderConfig};
use unforge::networks::stylegan2::{Generator, GeneratorConfig};
use unforge::networks::xception::{Xception, XceptionConfig, XceptionLayout};
use unforge::weights::WeightSource;

fn reference(name: &str) -> BTreeMap<String, Vec<usize>> {
    let path = format!("{}/../shared/reference/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("num_batches_tracked"))
        .map(|l| {
            let (key, shape) = l.split_once('\t').expect("key<TAB>shape");
            let dims =
                shape.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|d| d.trim().parse().ok()).collect();
            (key.to_string(), dims)
        })
        .collect()
}

fn declared(build: impl FnOnce(&WeightSource)) -> BTreeMap<String, Vec<usize>> {
    let source = WeightSource::shapes_only();
    build(&source);
    source.finish().expect("shape-only binding").tensors.into_iter().map(|(k, t)| (k, t.shape)).collect()
}

fn assert_same(ours: BTreeMap<String, Vec<usize>>, theirs: BTreeMap<String, Vec<usize>>) {
    let missing: Vec<_> = theirs.iter().filter(|(k, s)| ours.get(*k) != Some(s)).collect();
    let extra: Vec<_> = ours.iter().filter(|(k, _)| !theirs.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not declared as in PyTorch: {missing:?}\nnot in PyTorch: {extra:?}"
    );
}

#[test]
fn stylegan2_1024_keys() {
    let dev = Device::flex();
    let ours = declared(|s| drop(Generator::new(&s.root(&dev), &GeneratorConfig::rosinality(1024, 2)).unwrap()));
    assert_eq!(ours.len(), 171);
    assert_same(ours, reference("stylegan2_generator_1024.keys.tsv"));
}

#[test]
fn e4e_1024_keys() {
    let dev = Device::flex();
    let ours = declared(|s| drop(Encoder4Editing::new(&s.root(&dev), &EncoderConfig::e4e(1024)).unwrap()));
    // The pSp checkpoint keeps the encoder under `encoder.` and `latent_avg` beside it.
    assert_eq!(ours["latent_avg"], vec![18, 512]);
    let ours = ours.into_iter().filter_map(|(k, s)| k.strip_prefix("encoder.").map(|k| (k.to_string(), s))).collect();
    assert_same(ours, reference("e4e_encoder_1024.keys.tsv"));
}

#[test]
fn xception_artifact_eraser_keys() {
    let dev = Device::flex();
    let ours = declared(|s| drop(Xception::new(&s.root(&dev), &XceptionConfig::original(2)).unwrap()));
    assert_same(ours, reference("xception_artifact_eraser_2class.keys.tsv"));
}

#[test]
fn xception_deepfakebench_keys() {
    let dev = Device::flex();
    let cfg = XceptionConfig { layout: XceptionLayout::DeepfakeBench, ..XceptionConfig::original(2) };
    let ours = declared(|s| drop(Xception::new(&s.root(&dev), &cfg).unwrap()));
    let mut theirs = reference("xception_artifact_eraser_2class.keys.tsv");
    // ARCH.md §5.4: the same graph plus the always-registered adjust_channel (283 tensors).
    theirs.insert("adjust_channel.0.weight".into(), vec![512, 2048, 1, 1]);
    for k in [
        "adjust_channel.0.bias",
        "adjust_channel.1.weight",
        "adjust_channel.1.bias",
        "adjust_channel.1.running_mean",
        "adjust_channel.1.running_var",
    ] {
        theirs.insert(k.into(), vec![512]);
    }
    assert_same(ours, theirs);
}

#[test]
fn arcface_ir_se_50_keys() {
    let dev = Device::flex();
    let cfg = unforge::networks::arcface::ArcFaceConfig::ir_se_50();
    let ours = declared(|s| drop(unforge::networks::arcface::ArcFace::new(&s.root(&dev), &cfg).unwrap()));
    assert_same(ours, reference("arcface_irse50_backbone112.keys.tsv"));
}

fn efficientnet_keys(
    layout: unforge::networks::efficientnet::EfficientNetLayout,
    prefix: &str,
) -> BTreeMap<String, Vec<usize>> {
    use unforge::networks::efficientnet::{EfficientNet, EfficientNetConfig};
    let dev = Device::flex();
    let ours = declared(|s| drop(EfficientNet::new(&s.root(&dev), &EfficientNetConfig::b4(layout)).unwrap()));
    ours.into_iter().filter_map(|(k, s)| k.strip_prefix(prefix).map(|k| (k.to_string(), s))).collect()
}

#[test]
fn efficientnet_b4_deepfakebench_keys() {
    use unforge::networks::efficientnet::EfficientNetLayout;
    assert_same(
        efficientnet_keys(EfficientNetLayout::DeepfakeBench, "efficientnet."),
        reference("efficientnet_pytorch_b4_deepfakebench_inner.keys.tsv"),
    );
}

#[test]
fn efficientnet_b4_timm_keys() {
    use unforge::networks::efficientnet::EfficientNetLayout;
    assert_same(
        efficientnet_keys(EfficientNetLayout::ArtifactEraserTimm, "encoder."),
        reference("timm_tf_efficientnet_b4_ns.keys.tsv"),
    );
}

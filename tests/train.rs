//! Training on the synthetic world: a short run lowers the loss, and the weights come back under
//! the original key names and load strictly.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::train::{train_detector, DetectorTraining};
use unforge::weights::WeightSource;
use unforge::zoo::build_detector;

#[test]
fn a_short_detector_run_lowers_the_loss_and_exports_every_key() {
    let (manifest, _) = tiny_files();
    let entry = manifest.detectors().find(|d| d.name == "xception").unwrap().clone();
    let config = DetectorTraining { steps: 40, batch: 8, learning_rate: 2e-3, seed: 5, first_index: 0 };
    let mut losses = Vec::new();
    let trained = train_detector(&entry, &config, |s| losses.push(s.loss)).unwrap();
    assert_eq!(losses.len(), 40);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let (first, last) = (mean(&losses[..10]), mean(&losses[30..]));
    assert!(last < first * 0.9, "loss {first:.4} → {last:.4}: {losses:?}");
    // Every key of the architecture, and nothing else: the strict loader accepts the file.
    let source = WeightSource::checkpoint(trained.clone(), "trained");
    build_detector(&entry, &source.root(&Device::flex())).unwrap();
    source.finish().unwrap();
    // The parameters moved from their seeded start; the buffers did not.
    let start = WeightSource::seeded(5);
    build_detector(&entry, &start.root(&Device::flex())).unwrap();
    let start = start.finish().unwrap();
    assert_ne!(start.tensors["conv1.weight"], trained.tensors["conv1.weight"]);
    assert_ne!(start.tensors["last_linear.bias"], trained.tensors["last_linear.bias"]);
    assert_eq!(start.tensors["bn1.running_var"], trained.tensors["bn1.running_var"]);
    // Same settings, same bits.
    let again = train_detector(&entry, &DetectorTraining { steps: 3, ..config.clone() }, |_| {}).unwrap();
    let again2 = train_detector(&entry, &DetectorTraining { steps: 3, ..config }, |_| {}).unwrap();
    assert_eq!(again, again2);
}

#[test]
fn a_short_inverter_run_lowers_the_reconstruction_loss_and_loads_strictly() {
    use unforge::networks::e4e::Encoder4Editing;
    use unforge::networks::stylegan2::Generator;
    use unforge::train::{train_inverter, InverterTraining};
    let spec = tiny_spec();
    let (g, e) = (spec.generator(), spec.encoder());
    let config = InverterTraining { steps: 30, batch: 4, learning_rate: 2e-3, seed: 3, first_index: 0, delta_weight: 0.1 };
    let mut steps = Vec::new();
    let (gw, ew) = train_inverter(&g, &e, &config, |s| steps.push(s.clone())).unwrap();
    let mean = |f: &dyn Fn(&unforge::train::InverterStep) -> f32, r: std::ops::Range<usize>| steps[r.clone()].iter().map(f).sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(&|s| s.pixel + s.multiscale, 0..8), mean(&|s| s.pixel + s.multiscale, 22..30));
    assert!(last < first * 0.9, "reconstruction loss {first:.4} → {last:.4}");
    assert!(steps.iter().all(|s| s.delta.is_finite() && s.delta >= 0.0));
    let dev = Device::flex();
    let source = WeightSource::checkpoint(gw, "trained generator");
    Generator::new(&source.root(&dev), &g).unwrap();
    source.finish().unwrap();
    let source = WeightSource::checkpoint(ew, "trained encoder");
    Encoder4Editing::new(&source.root(&dev), &e).unwrap();
    source.finish().unwrap();
    let bad = InverterTraining { batch: 0, ..config };
    assert!(train_inverter(&g, &e, &bad, |_| {}).is_err());
}

//! Training on the synthetic world: a short run lowers the loss, and the weights come back under
//! the original key names and load strictly.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::synth::ForgeryStrength;
use unforge::train::{DetectorTraining, train_detector};
use unforge::weights::WeightSource;
use unforge::zoo::build_detector;

#[test]
fn a_short_detector_run_lowers_the_loss_and_exports_every_key() {
    let (manifest, _) = tiny_files();
    let entry = manifest.detectors().find(|d| d.name == "xception").unwrap().clone();
    // Epochs over 8 pairs: the loss must fall as the detector fits them.
    let config = DetectorTraining {
        steps: 40,
        batch: 8,
        learning_rate: 2e-3,
        seed: 5,
        first_index: 0,
        reconstructed_share: 0.0,
        location_weight: 1.0,
        distinct_pairs: Some(8),
        forgeries: ForgeryStrength::SUBTLE,
    };
    let mut losses = Vec::new();
    let trained = train_detector(&entry, &config, None, None, |s, _| {
        let _: () = losses.push(s.loss);
        Ok(())
    })
    .unwrap();
    assert_eq!(losses.len(), 40);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let (first, last) = (mean(&losses[..10]), mean(&losses[30..]));
    assert!(last < first * 0.5, "loss {first:.4} → {last:.4}: {losses:?}");
    // Every key of the architecture, and nothing else: the strict loader accepts the file.
    let source = WeightSource::checkpoint(trained.clone(), "trained");
    build_detector(&entry, &source.root(&Device::flex())).unwrap();
    source.finish().unwrap();
    // The parameters moved from their seeded start, and BatchNorm's running statistics are
    // the batches' (which a freshly seeded layer's zeros and ones are not).
    let start = WeightSource::seeded(5);
    build_detector(&entry, &start.root(&Device::flex())).unwrap();
    let start = start.finish().unwrap();
    assert_ne!(start.tensors["conv1.weight"], trained.tensors["conv1.weight"]);
    assert_ne!(start.tensors["last_linear.bias"], trained.tensors["last_linear.bias"]);
    for key in ["bn1.running_mean", "bn1.running_var", "block1.rep.1.running_var"] {
        assert_ne!(start.tensors[key], trained.tensors[key], "{key}");
    }
    assert!(trained.tensors["bn1.running_var"].data.iter().all(|v| v.is_finite() && *v > 0.0));
    // Same settings, same bits.
    let again =
        train_detector(&entry, &DetectorTraining { steps: 3, ..config.clone() }, None, None, |_, _| Ok(())).unwrap();
    let again2 = train_detector(&entry, &DetectorTraining { steps: 3, ..config }, None, None, |_, _| Ok(())).unwrap();
    assert_eq!(again, again2);
}

#[test]
fn batch_norm_uses_batch_statistics_only_while_training() {
    use burn::tensor::{Tensor, TensorData};
    use unforge::networks::layers::BatchNorm;
    let source = WeightSource::seeded(1);
    let bn = BatchNorm::new(&source.root(&Device::flex().autodiff()), 2, 1e-5);
    let data: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let x = || Tensor::<4>::from_data(TensorData::new(data.clone(), [2, 2, 2, 2]), &Device::flex().autodiff());
    // Off: running statistics (0, 1) and weight 1, bias 0 leave the input as it is.
    assert!(to_vec(bn.forward(x())).iter().zip(&data).all(|(a, b)| (a - b).abs() <= 1e-4 * b.abs().max(1.0)));
    // On: every channel normalised to mean 0 and variance 1 over the batch, and the running
    // mean moved a tenth of the way to the batch mean.
    let bn = BatchNorm::set_training(bn, true);
    let y = to_vec(bn.forward(x()));
    let channel0: Vec<f32> = [0, 1, 2, 3, 8, 9, 10, 11].iter().map(|&i| y[i]).collect();
    let mean = channel0.iter().sum::<f32>() / 8.0;
    let var = channel0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 8.0;
    assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "mean {mean} var {var}");
    let _ = bn.forward(x());
    let bn = BatchNorm::set_training(bn, false);
    let running = to_vec(bn.running_mean.value_sync());
    // Batch means 5.5 and 9.5; two updates with momentum 0.1 give 0.19 of them.
    assert!((running[0] - 0.19 * 5.5).abs() < 1e-4 && (running[1] - 0.19 * 9.5).abs() < 1e-4, "{running:?}");
    // Channel 0 holds 0–3 and 8–11: biased variance 17.25, unbiased (n = 8) 19.714; the
    // running variance starts at 1 and moves 0.1 of the way twice.
    let var = to_vec(bn.running_var.value_sync());
    let expected = 0.81 + 0.19 * 17.25 * 8.0 / 7.0;
    assert!((var[0] - expected).abs() < 1e-3, "running variance {} (PyTorch: {expected})", var[0]);
}

#[test]
fn a_resumed_detector_run_continues_where_the_checkpoint_stopped() {
    use unforge::train::Resume;
    let (manifest, _) = tiny_files();
    let entry = manifest.detectors().find(|d| d.name == "resnet").unwrap().clone();
    let config = DetectorTraining {
        steps: 6,
        batch: 4,
        learning_rate: 2e-3,
        seed: 9,
        first_index: 0,
        reconstructed_share: 0.0,
        location_weight: 1.0,
        distinct_pairs: None,
        forgeries: ForgeryStrength::SUBTLE,
    };
    let (mut saved, mut steps) = (None, Vec::new());
    train_detector(&entry, &config, None, None, |s, snapshot| {
        if s.step == 2 {
            saved = Some(snapshot()?);
        }
        Ok(())
    })
    .unwrap();
    let saved = saved.unwrap();
    let resumed = train_detector(&entry, &config, Some(Resume { step: 3, weights: saved.clone() }), None, |s, _| {
        let _: () = steps.push(s.step);
        Ok(())
    })
    .unwrap();
    assert_eq!(steps, vec![3, 4, 5]);
    // It continued from the saved weights: from the seeded start instead, the same steps end
    // elsewhere.
    let start = WeightSource::seeded(config.seed);
    build_detector(&entry, &start.root(&Device::flex())).unwrap();
    let from_start = train_detector(
        &entry,
        &config,
        Some(Resume { step: 3, weights: start.finish().unwrap() }),
        None,
        |_, _| Ok(()),
    )
    .unwrap();
    assert_ne!(resumed.tensors["fc.weight"], from_start.tensors["fc.weight"]);
    assert_ne!(resumed.tensors["fc.weight"], saved.tensors["fc.weight"], "the resumed steps trained");
    // A callback's error stops the run and comes back.
    let err = train_detector(&entry, &config, None, None, |_, _| Err(unforge::error::Error::config("disk full")))
        .unwrap_err();
    assert!(err.to_string().contains("disk full"));
}

/// A short inverter run on the tiny zoo's sizes, the generator trained beside the encoder or not.
fn inverter_training(steps: usize, train_generator: bool) -> unforge::train::InverterTraining {
    unforge::train::InverterTraining {
        steps,
        batch: 4,
        learning_rate: 2e-3,
        seed: 3,
        first_index: 0,
        delta_weight: 0.1,
        forgeries: ForgeryStrength::SUBTLE,
        train_generator,
    }
}

#[test]
fn a_short_inverter_run_lowers_the_reconstruction_loss_and_loads_strictly() {
    use unforge::networks::e4e::Encoder4Editing;
    use unforge::networks::stylegan2::Generator;
    use unforge::train::{InverterTraining, train_inverter};
    let spec = tiny_spec();
    let (g, e) = (spec.generator(), spec.encoder());
    let config = inverter_training(30, true);
    let mut steps = Vec::new();
    let (gw, ew) = train_inverter(&g, &e, &config, None, |s, _| {
        let _: () = steps.push(s.clone());
        Ok(())
    })
    .unwrap();
    let mean = |f: &dyn Fn(&unforge::train::InverterStep) -> f32, r: std::ops::Range<usize>| {
        steps[r.clone()].iter().map(f).sum::<f32>() / r.len() as f32
    };
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
    assert!(train_inverter(&g, &e, &bad, None, |_, _| Ok(())).is_err());
}

#[test]
fn the_encoder_trains_alone_against_a_frozen_generator() {
    use unforge::train::{Resume, join_inverter, train_inverter};
    let spec = tiny_spec();
    let (g, e) = (spec.generator(), spec.encoder());
    let config = inverter_training(24, false);
    // The generator a joint run leaves (any fixed weights would do; trained ones are realistic).
    let joint = inverter_training(6, true);
    let (g0, e0) = train_inverter(&g, &e, &joint, None, |_, _| Ok(())).unwrap();
    let mut losses = Vec::new();
    let resume = Resume { step: 0, weights: join_inverter(&g0, &e0) };
    let (g1, e1) = train_inverter(&g, &e, &config, Some(resume), |s, _| {
        let _: () = losses.push(s.pixel + s.multiscale);
        Ok(())
    })
    .unwrap();
    assert_eq!(g1, g0, "the generator is frozen");
    assert_ne!(e1, e0, "the encoder trained");
    let mean = |r: std::ops::Range<usize>| losses[r.clone()].iter().sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(0..6), mean(18..24));
    assert!(last < first * 0.95, "reconstruction loss {first:.4} → {last:.4}");
}

#[test]
fn a_short_identity_run_learns_to_tell_people_apart() {
    use unforge::networks::arcface::ArcFace;
    use unforge::train::identity::{IdentityScores, IdentityTraining, train_identity};
    let cfg = tiny_spec().arcface();
    let training =
        IdentityTraining { steps: 40, identities: 8, learning_rate: 2e-3, seed: 4, image_size: 64, temperature: 0.1 };
    let mut steps = Vec::new();
    let trained = train_identity(&cfg, &training, None, |s, _| {
        let _: () = steps.push(s.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(steps.len(), 40);
    let mean = |r: std::ops::Range<usize>| steps[r.clone()].iter().map(|s| s.loss).sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(0..10), mean(30..40));
    // New people every step: a falling loss is generalisation, not memory.
    assert!(last < first * 0.8, "contrastive loss {first:.3} → {last:.3}");
    let dev = Device::flex();
    let load = |weights| {
        let source = WeightSource::checkpoint(weights, "identity");
        let net = ArcFace::new(&source.root(&dev), &cfg).unwrap();
        source.finish().unwrap();
        net
    };
    let start = WeightSource::seeded(4);
    ArcFace::new(&start.root(&dev), &cfg).unwrap();
    let before = IdentityScores::measure(&load(start.finish().unwrap()), 12, 64, &dev).unwrap();
    let after = IdentityScores::measure(&load(trained), 12, 64, &dev).unwrap();
    // Unseen test-split people: the trained network's cosine ranks their shots better.
    assert!(after.verification_auc > before.verification_auc + 0.05, "{before:?} → {after:?}");
    assert!(after.genuine_mean > after.impostor_mean, "{after:?}");
    // Same settings, same bits.
    let short = IdentityTraining { steps: 2, ..training.clone() };
    let runs: Vec<_> = (0..2).map(|_| train_identity(&cfg, &short, None, |_, _| Ok(())).unwrap()).collect();
    assert_eq!(runs[0], runs[1]);
    let bad = IdentityTraining { identities: 1, ..training };
    assert!(train_identity(&cfg, &bad, None, |_, _| Ok(())).unwrap_err().to_string().contains("two people"));
}

#[test]
fn a_pool_holds_refined_or_tuned_reconstructions_of_pairs_and_feeds_a_detector() {
    use unforge::inversion::PivotalTuning;
    use unforge::train::{ReconstructionPool, Reconstructions, Reconstructor, paired_batch};
    use unforge::weights::{HostTensor, TensorFile};
    let spec = tiny_spec();
    let (manifest, files) = tiny_files();
    let file = |name: &str| TensorFile::from_safetensors(&files[name], name).unwrap();
    let reconstructor = Reconstructor::new(
        (&spec.generator(), file("generator.safetensors")),
        (&spec.encoder(), file("encoder.safetensors")),
    )
    .unwrap();
    let refining = PivotalTuning::off().with_pivot_steps(8);
    let tuning = PivotalTuning { steps: 8, learning_rate: 2e-2, ..PivotalTuning::off() };
    let pool = |inversion: &PivotalTuning, resume| {
        ReconstructionPool::make(&reconstructor, 0..2, 32, &ForgeryStrength::SUBTLE, inversion, resume, |_, _| Ok(()))
    };
    let (raw, _, masks) = paired_batch(&[0, 1], 32, &ForgeryStrength::SUBTLE, &Device::flex());
    let plain = to_vec(reconstructor.reconstruct(raw.clone(), &Device::flex()));
    let raw = to_vec(raw);
    let images = |p: &ReconstructionPool| p.to_file().tensors["images"].data.clone();
    let mse = |a: &[f32]| a.iter().zip(&raw).map(|(x, y)| (x - y).powi(2)).sum::<f32>() / raw.len() as f32;
    for inversion in [refining, tuning, tuning.with_pivot_steps(4)] {
        let made = pool(&inversion, None).unwrap();
        assert_eq!(made.pairs(), 2);
        assert_eq!(made, pool(&inversion, None).unwrap(), "same settings, same pool");
        // Refinement and tuning each bring the reconstructions nearer their images than the
        // encoder's are.
        assert!(mse(&images(&made)) < 0.9 * mse(&plain), "{inversion:?}: {} vs {}", mse(&images(&made)), mse(&plain));
        // Stopped after its first pair and resumed from the snapshot, it is the same pool.
        let mut first = None;
        let _ = ReconstructionPool::make(
            &reconstructor,
            0..2,
            32,
            &ForgeryStrength::SUBTLE,
            &inversion,
            None,
            |p, snapshot| {
                first = Some(snapshot()?);
                if p == 0 { Err(unforge::error::Error::config("stop")) } else { Ok(()) }
            },
        );
        let first = first.expect("snapshot after the first pair");
        assert_eq!(
            ReconstructionPool::from_file(&first).unwrap().pairs(),
            1,
            "the snapshot holds the pairs made so far"
        );
        let resume = unforge::train::Resume { step: 1, weights: first };
        assert_eq!(pool(&inversion, Some(resume)).unwrap(), made, "{inversion:?}");
    }
    // Neither refinement nor tuning is no pool.
    let err = pool(&PivotalTuning::off(), None).unwrap_err().to_string();
    assert!(err.contains("needs pivot refinement or tuning steps"), "{err}");
    let tuned = pool(&tuning, None).unwrap();
    // Masks travel with the images: the pristine ones empty, the forged ones not.
    let saved = tuned.to_file();
    let m = &saved.tensors["masks"];
    assert_eq!(m.shape, [4, 32, 32]);
    for (i, mask) in masks.iter().enumerate() {
        assert_eq!(m.data[i * 1024..(i + 1) * 1024].iter().map(|v| *v > 0.5).collect::<Vec<_>>(), *mask);
    }
    assert_eq!(ReconstructionPool::from_file(&saved).unwrap(), tuned);
    let mut broken = saved.clone();
    broken.tensors.remove("masks");
    assert!(ReconstructionPool::from_file(&broken).unwrap_err().to_string().contains("not a reconstruction pool"));
    // A detector trains with the pool as the reconstructed half of its batches; a pool made at
    // another size is refused.
    let entry = manifest.detectors().find(|d| d.name == "resnet").unwrap().clone();
    let config = DetectorTraining {
        steps: 3,
        batch: 4,
        learning_rate: 2e-3,
        seed: 5,
        first_index: 0,
        reconstructed_share: 0.5,
        location_weight: 1.0,
        distinct_pairs: None,
        forgeries: ForgeryStrength::SUBTLE,
    };
    let mut steps = 0;
    train_detector(&entry, &config, None, Some(Reconstructions::Pool(&tuned)), |_, _| {
        let _: () = steps += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(steps, 3);
    let err =
        ReconstructionPool::make(&reconstructor, 0..1, 16, &ForgeryStrength::SUBTLE, &tuning, None, |_, _| Ok(()))
            .unwrap_err()
            .to_string();
    assert!(err.contains("16 px") && err.contains("32 px"), "{err}");
    let small = TensorFile {
        tensors: [
            ("images".to_string(), HostTensor::new(vec![2, 3, 16, 16], vec![0.0; 1536])),
            ("masks".to_string(), HostTensor::new(vec![2, 16, 16], vec![0.0; 512])),
        ]
        .into(),
    };
    let small = ReconstructionPool::from_file(&small).unwrap();
    let err = train_detector(&entry, &config, None, Some(Reconstructions::Pool(&small)), |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 pairs at 16 px") && err.contains("at 32 px"), "{err}");
}

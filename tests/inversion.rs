//! Pivotal tuning: a copy of the generator, tuned around the encoder's latent, renders the
//! image more faithfully; the zoo's own generator is untouched; the search and the
//! counterfactual go through the tuned copy; same input, same bits; bad settings are refused.

mod common;

use burn::tensor::Device;
use common::to_vec;
use unforge::explanation::{ExplainRequest, crop, explain, explain_inverted};
use unforge::inversion::PivotalTuning;
use unforge::metrics::{psnr, to_unit_range};
use unforge::search::{Preset, RowMask, SearchConfig};
use unforge::synth::{Sample, Split};
use unforge::zoo::{Zoo, read_dir};

/// The trained zoo: its encoder's reconstructions are blurry (about 23 dB), as an untuned
/// inversion of a face outside the generator's range is.
fn trained_zoo(device: &Device) -> Zoo {
    let (manifest, files) = read_dir(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
    Zoo::load(manifest, &files, device).unwrap()
}

const TUNING: PivotalTuning =
    PivotalTuning { steps: 40, learning_rate: PivotalTuning::LEARNING_RATE, ..PivotalTuning::off() };

fn fidelity(zoo: &Zoo, image: &unforge::image::RgbaImage, reconstruction: Vec<f32>) -> f64 {
    let size = zoo.generator.size;
    psnr(&to_unit_range(&image.center_square().resize(size, size).to_planar()), &to_unit_range(&reconstruction), 1.0)
}

#[test]
fn tuning_brings_the_reconstruction_closer_and_leaves_the_zoo_as_it_was() {
    let device = Device::flex();
    let zoo = trained_zoo(&device);
    // A face swap of the test split.
    let image = Sample::generate(Split::Test, 1, 64).image;
    let plain = zoo.inverter().invert(&image, &device);
    let (plain_latent, plain_rec) = (to_vec(plain.latent), to_vec(plain.reconstruction));
    let tuned = unforge::block_on(zoo.inverter().invert_tuned(&image, &TUNING, &device, &mut |_| {})).unwrap();
    assert!(tuned.tuned.is_some());
    let (before, after) =
        (fidelity(&zoo, &image, plain_rec.clone()), fidelity(&zoo, &image, to_vec(tuned.reconstruction.clone())));
    assert!(after > before + 2.0, "40 steps of tuning: {before:.2} → {after:.2} dB");
    // The pivot stays where the encoder put it; the generator moved.
    assert_eq!(to_vec(tuned.latent.clone()), plain_latent);
    // The zoo's generator is not the tuned one.
    assert_eq!(to_vec(zoo.inverter().invert(&image, &device).reconstruction), plain_rec);
    // Each step reports its loss, and the loss falls.
    let mut losses = Vec::new();
    unforge::block_on(
        zoo.inverter().invert_tuned(&image, &TUNING, &device, &mut |t| losses.push((t.step, t.steps, t.loss))),
    )
    .unwrap();
    assert_eq!(losses.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(), (0..40).map(|i| (i, 40)).collect::<Vec<_>>());
    assert!(losses[39].2 < 0.5 * losses[0].2, "loss {} → {}", losses[0].2, losses[39].2);
    // Same input, same bits.
    let again = unforge::block_on(zoo.inverter().invert_tuned(&image, &TUNING, &device, &mut |_| {})).unwrap();
    assert_eq!(to_vec(again.reconstruction), to_vec(tuned.reconstruction));
    // No steps: the plain inversion.
    let off =
        unforge::block_on(zoo.inverter().invert_tuned(&image, &PivotalTuning::off(), &device, &mut |_| {})).unwrap();
    assert!(off.tuned.is_none());
    assert_eq!(to_vec(off.reconstruction), plain_rec);
}

#[test]
fn the_search_and_the_counterfactual_go_through_the_tuned_generator() {
    let device = Device::flex();
    let zoo = trained_zoo(&device);
    let image = Sample::generate(Split::Test, 1, 64).image;
    let mask = RowMask::full(zoo.manifest.n_latent);
    // No search steps: the counterfactual is the latent rendered as it is.
    let still = SearchConfig { max_steps: 0, pivotal_tuning: TUNING, ..Preset::Readme.config() };
    let r =
        unforge::block_on(explain(&zoo, &image, &ExplainRequest::new("resnet", mask.clone(), still.clone()), &mut ()))
            .unwrap();
    let tuned = unforge::block_on(zoo.inverter().invert_tuned(&image, &TUNING, &device, &mut |_| {})).unwrap();
    let expected = unforge::image::RgbaImage::from_planar(&to_vec(tuned.reconstruction), 64, 64);
    assert_eq!(r.reconstruction.data, expected.data, "the result shows the tuned reconstruction");
    assert_eq!(r.counterfactual.data, r.reconstruction.data, "rendered by the same tuned generator");
    let untuned = ExplainRequest::new(
        "resnet",
        mask.clone(),
        SearchConfig { pivotal_tuning: PivotalTuning::off(), ..still.clone() },
    );
    let plain = unforge::block_on(explain(&zoo, &image, &untuned, &mut ())).unwrap();
    assert!(
        r.inversion_psnr_db > plain.inversion_psnr_db + 2.0,
        "{} vs {}",
        r.inversion_psnr_db,
        plain.inversion_psnr_db
    );
    // A few steps move the victim's score on the tuned reconstruction. Compared as logits: the
    // default zoo's ResNet is sure of this face swap (P(fake) ≈ 1 − 3e-5), where a probability
    // barely moves while the logit falls.
    let moving = SearchConfig { max_steps: 5, ..Preset::Fast.config() };
    let tuned_search = ExplainRequest::new("resnet", mask.clone(), SearchConfig { pivotal_tuning: TUNING, ..moving });
    let r = unforge::block_on(explain(&zoo, &image, &tuned_search, &mut ())).unwrap();
    let logit = |p: f32| (p as f64 / (1.0 - p as f64)).ln();
    assert!(
        logit(r.p_fake_counterfactual) < logit(r.p_fake_reconstruction) - 0.1,
        "{} → {}",
        r.p_fake_reconstruction,
        r.p_fake_counterfactual
    );
    assert!(
        (r.history[0].p_fake[0] - r.p_fake_reconstruction).abs() < 1e-5,
        "the search starts from the tuned reconstruction"
    );
    // An inversion made beforehand must carry the tuning the search asks for.
    let plain = zoo.inverter().invert(&image, &device);
    let request = ExplainRequest::new("resnet", mask, still);
    let face = crop(&zoo, &image, &request).unwrap();
    let err = unforge::block_on(explain_inverted(&zoo, &face, &plain, &request, &mut ())).expect_err("refused");
    assert!(
        err.to_string().contains("made with 0 steps of pivotal tuning, the search asks for 40 steps of pivotal tuning"),
        "{err}"
    );
}

#[test]
fn bad_tuning_settings_are_refused_by_name() {
    let cases = [
        (
            PivotalTuning { steps: PivotalTuning::MAX_STEPS + 1, learning_rate: 1e-3, ..PivotalTuning::off() },
            "at most 5000 steps",
        ),
        (
            PivotalTuning { steps: 10, learning_rate: 0.0, ..PivotalTuning::off() },
            "learning rate must be positive, got 0",
        ),
        (
            PivotalTuning { steps: 10, learning_rate: f32::NAN, ..PivotalTuning::off() },
            "learning rate must be positive, got NaN",
        ),
    ];
    for (tuning, needle) in cases {
        let err = tuning.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        let err =
            SearchConfig { pivotal_tuning: tuning, ..SearchConfig::default() }.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    let device = Device::flex();
    let zoo = common::tiny_zoo();
    let bad = PivotalTuning { steps: 10, learning_rate: -1.0, ..PivotalTuning::off() };
    assert!(
        unforge::block_on(zoo.inverter().invert_tuned(&common::test_image(40), &bad, &device, &mut |_| {})).is_err()
    );
}

#[test]
fn refinement_brings_a_batch_closer_image_by_image_and_is_refused_when_bad() {
    use burn::tensor::Tensor;
    use unforge::inversion::LatentRefinement;
    let device = Device::flex();
    let zoo = trained_zoo(&device);
    // A real face and a face swap of the test split, refined as one batch.
    let images: Vec<_> = [0, 1].map(|i| Sample::generate(Split::Test, i, 64).image).into();
    let inverter = zoo.inverter();
    let start = Tensor::cat(images.iter().map(|im| inverter.invert(im, &device).latent).collect(), 0);
    let target = Tensor::cat(images.iter().map(|im| im.to_tensor(64, &device)).collect(), 0);
    let refinement = LatentRefinement::steps(30);
    let mut losses = Vec::new();
    let refine = |start: Tensor<3>, target: Tensor<4>, losses: &mut Vec<f32>| {
        let refined = unforge::block_on(refinement.refine(&zoo.generator, start, target, &mut |s| losses.push(s.loss)));
        refined.unwrap()
    };
    let refined = refine(start.clone(), target.clone(), &mut losses);
    assert_eq!(losses.len(), 30);
    assert!(losses[29] < 0.8 * losses[0], "loss {} → {}", losses[0], losses[29]);
    let rendered = to_vec(zoo.generator.synthesize(refined.clone()));
    let plain = to_vec(zoo.generator.synthesize(start.clone()));
    let per = 3 * 64 * 64;
    for (i, image) in images.iter().enumerate() {
        let (before, after) = (
            fidelity(&zoo, image, plain[i * per..(i + 1) * per].to_vec()),
            fidelity(&zoo, image, rendered[i * per..(i + 1) * per].to_vec()),
        );
        assert!(after > before + 1.0, "image {i}: 30 refinement steps, {before:.2} → {after:.2} dB");
    }
    // Each image refines as it would alone: its own loss, element-wise Adam.
    let alone = refine(start.clone().narrow(0, 1, 1), target.clone().narrow(0, 1, 1), &mut Vec::new());
    let (batched, alone) = (to_vec(refined.clone().narrow(0, 1, 1)), to_vec(alone));
    let gap = batched.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(gap < 1e-4, "refined in a batch and alone differ by {gap}");
    // Same input, same bits.
    assert_eq!(to_vec(refine(start.clone(), target.clone(), &mut Vec::new())), to_vec(refined));
    // Bad settings are refused by name, before any step.
    for (bad, needle) in [
        (LatentRefinement { steps: LatentRefinement::MAX_STEPS + 1, ..refinement }, "at most 5000 steps"),
        (LatentRefinement { learning_rate: f32::NAN, ..refinement }, "learning rate must be positive, got NaN"),
    ] {
        let err = unforge::block_on(bad.refine(&zoo.generator, start.clone(), target.clone(), &mut |_| {}));
        assert!(err.unwrap_err().to_string().contains(needle));
    }
}

#[test]
fn a_refined_pivot_is_where_the_search_starts_and_tuning_counts_its_steps() {
    let device = Device::flex();
    let zoo = trained_zoo(&device);
    let image = Sample::generate(Split::Test, 1, 64).image;
    let plain = zoo.inverter().invert(&image, &device);
    let (plain_latent, plain_rec) = (to_vec(plain.latent), to_vec(plain.reconstruction));
    let mut seen = Vec::new();
    let pivot_only = PivotalTuning::off().with_pivot_steps(20);
    let refined = unforge::block_on(
        zoo.inverter().invert_tuned(&image, &pivot_only, &device, &mut |t| seen.push((t.step, t.steps))),
    )
    .unwrap();
    // The pivot moved, the zoo's generator renders it (nothing was tuned), and it is closer.
    assert!(refined.tuned.is_none());
    assert_ne!(to_vec(refined.latent.clone()), plain_latent);
    let (before, after) =
        (fidelity(&zoo, &image, plain_rec), fidelity(&zoo, &image, to_vec(refined.reconstruction.clone())));
    assert!(after > before + 1.0, "20 pivot steps: {before:.2} → {after:.2} dB");
    assert_eq!(seen, (0..20).map(|i| (i, 20)).collect::<Vec<_>>());
    // A search asking for other settings does not start from it; one with these does.
    assert!(refined.made_with(&pivot_only) && !refined.made_with(&PivotalTuning::off()));
    // Pivot and tuning: one count over both, the pivot's steps first; the tuned copy renders
    // the refined pivot.
    let both = PivotalTuning::steps(5).with_pivot_steps(5);
    seen.clear();
    let tuned =
        unforge::block_on(zoo.inverter().invert_tuned(&image, &both, &device, &mut |t| seen.push((t.step, t.steps))))
            .unwrap();
    assert_eq!(seen, (0..10).map(|i| (i, 10)).collect::<Vec<_>>());
    let five = unforge::block_on(zoo.inverter().invert_tuned(
        &image,
        &PivotalTuning::off().with_pivot_steps(5),
        &device,
        &mut |_| {},
    ))
    .unwrap();
    assert_eq!(to_vec(tuned.latent.clone()), to_vec(five.latent));
    assert!(tuned.tuned.is_some());
    // A bad pivot is refused by name.
    let bad = PivotalTuning::off().with_pivot_steps(unforge::inversion::LatentRefinement::MAX_STEPS + 1);
    let Err(err) = unforge::block_on(zoo.inverter().invert_tuned(&image, &bad, &device, &mut |_| {})) else {
        panic!("a pivot of 5001 steps was taken")
    };
    assert!(err.to_string().contains("W+ refinement takes at most 5000 steps"), "{err}");
}

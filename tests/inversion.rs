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

const TUNING: PivotalTuning = PivotalTuning { steps: 40, learning_rate: PivotalTuning::LEARNING_RATE };

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
    assert!(err.to_string().contains("made with 0 steps of pivotal tuning, the search asks for 40"), "{err}");
}

#[test]
fn bad_tuning_settings_are_refused_by_name() {
    let cases = [
        (PivotalTuning { steps: PivotalTuning::MAX_STEPS + 1, learning_rate: 1e-3 }, "at most 5000 steps"),
        (PivotalTuning { steps: 10, learning_rate: 0.0 }, "learning rate must be positive, got 0"),
        (PivotalTuning { steps: 10, learning_rate: f32::NAN }, "learning rate must be positive, got NaN"),
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
    let bad = PivotalTuning { steps: 10, learning_rate: -1.0 };
    assert!(
        unforge::block_on(zoo.inverter().invert_tuned(&common::test_image(40), &bad, &device, &mut |_| {})).is_err()
    );
}

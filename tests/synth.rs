//! The synthetic world: same seed same bytes, masks that are exactly the altered pixels, and
//! labels that say what was done.

use unforge::synth::{FaceParams, ForgeryKind, Label, Sample, Split};

#[test]
fn same_index_same_bytes_and_splits_are_disjoint() {
    let a = Sample::generate(Split::Test, 7, 64);
    let b = Sample::generate(Split::Test, 7, 64);
    assert_eq!(a.image, b.image);
    assert_eq!(a.mask, b.mask);
    let other = Sample::generate(Split::Train, 7, 64);
    assert_ne!(a.image, other.image, "splits draw different faces");
    let seeds = |s: Split| (s.base_seed(), s.base_seed() + (1 << 32) - 1);
    let (tr, va, te) = (seeds(Split::Train), seeds(Split::Validation), seeds(Split::Test));
    assert!(tr.1 < va.0 && va.1 < te.0);
    // Different faces at different indices.
    assert_ne!(Sample::generate(Split::Test, 0, 64).image, Sample::generate(Split::Test, 2, 64).image);
}

#[test]
fn masks_are_exactly_the_altered_pixels() {
    for index in 0..14 {
        let s = Sample::generate(Split::Validation, index, 64);
        for (i, (a, b)) in s.image.data.chunks(4).zip(s.pristine.data.chunks(4)).enumerate() {
            assert_eq!(s.mask[i] == 255, a[..3] != b[..3], "index {index}, pixel {i}");
            assert!(s.mask[i] == 0 || s.mask[i] == 255);
        }
        match s.label {
            Label::Real => assert_eq!(s.altered_pixels(), 0, "a real image has an empty mask"),
            Label::Fake(kind) => {
                let n = s.altered_pixels();
                assert!(n > 20, "{kind:?} at {index} altered only {n} pixels");
                assert!(n < 64 * 64, "{kind:?} at {index} altered the whole image");
            }
        }
    }
}

#[test]
fn labels_cycle_through_every_forgery() {
    let kinds: Vec<Label> = (0..12).map(|i| Sample::generate(Split::Test, i, 32).label).collect();
    for (i, label) in kinds.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(*label, Label::Real);
        } else {
            assert_eq!(*label, Label::Fake(ForgeryKind::ALL[i / 2]));
        }
    }
}

/// The share of the mask above 3/5 of the image height (the eyes sit near the middle).
fn upper_share(s: &Sample, size: usize) -> f32 {
    let total = s.altered_pixels() as f32;
    let upper = s.mask.iter().enumerate().filter(|(i, m)| **m != 0 && i / size < size * 3 / 5).count() as f32;
    upper / total
}

#[test]
fn eye_and_brow_forgeries_stay_in_the_upper_face() {
    let size = 96;
    for base in [0u64, 12, 24] {
        for (offset, kind) in [(3u64, ForgeryKind::AsymmetricEyes), (5, ForgeryKind::IrregularBrows)] {
            let s = Sample::generate(Split::Train, base + offset, size);
            assert_eq!(s.label, Label::Fake(kind));
            assert!(
                upper_share(&s, size) > 0.9,
                "{kind:?} at {}: {:.2} of its mask in the upper face",
                base + offset,
                upper_share(&s, size)
            );
        }
    }
}

#[test]
fn forgery_names_are_their_json_names() {
    for kind in unforge::synth::ForgeryKind::ALL {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
    }
}

#[test]
fn shots_of_one_person_keep_the_person_and_change_the_shot() {
    let size = 64;
    let own = Sample::generate(Split::Test, 4, size);
    // Shot 0 is the image's own pristine capture.
    assert_eq!(Sample::identity_capture(Split::Test, 4, 0, size).data, own.pristine.data);
    let (a, b) = (Sample::identity_capture(Split::Test, 4, 1, size), Sample::identity_capture(Split::Test, 4, 2, size));
    assert_ne!(a.data, b.data);
    assert_eq!(a.data, Sample::identity_capture(Split::Test, 4, 1, size).data);
    let person = FaceParams::sample(Split::Test.base_seed() + 4);
    // Every field of the shot comes from the shot's draw, every other one is the person's.
    let shot = FaceParams::sample(99);
    let expected = FaceParams {
        gaze: shot.gaze,
        smile: shot.smile,
        light: shot.light,
        light_strength: shot.light_strength,
        background: shot.background,
        center: shot.center,
        roll: shot.roll,
        scale: shot.scale,
        noise: shot.noise,
        blur: shot.blur,
        quantisation: shot.quantisation,
        ..person.clone()
    };
    assert_eq!(person.recaptured(99), expected);
    assert_ne!(expected, person);
}

#[test]
fn visible_forgeries_change_the_same_faces_more_and_leave_the_reals_alone() {
    use unforge::synth::ForgeryStrength;
    assert_eq!(ForgeryStrength::default(), ForgeryStrength::VISIBLE, "the default zoo's world");
    assert_eq!(ForgeryStrength::preset("visible").unwrap(), ForgeryStrength::VISIBLE);
    assert_eq!(ForgeryStrength::VISIBLE.name(), Some("visible"));
    let err = ForgeryStrength::preset("loud").unwrap_err().to_string();
    assert!(err.contains("`loud`") && err.contains("subtle") && err.contains("visible"), "{err}");
    // The change a forgery makes: summed |fake − pristine| over the pixels, per kind, over
    // two faces of each kind.
    let change = |strength: &ForgeryStrength, index: u64| {
        let s = Sample::generate_with(Split::Validation, index, 64, strength);
        s.image.data.iter().zip(&s.pristine.data).map(|(a, b)| (*a as i64 - *b as i64).abs()).sum::<i64>()
    };
    for index in 0..24 {
        let (subtle, visible) = (
            Sample::generate_with(Split::Validation, index, 64, &ForgeryStrength::SUBTLE),
            Sample::generate_with(Split::Validation, index, 64, &ForgeryStrength::VISIBLE),
        );
        assert_eq!(subtle.label, visible.label, "the kinds do not depend on the strength");
        assert_eq!(subtle.pristine, visible.pristine, "the faces do not depend on the strength");
        if index % 2 == 0 {
            assert_eq!(subtle.image, visible.image, "a real image is the same at every strength");
        }
    }
    for kind in ForgeryKind::ALL {
        let of_kind: Vec<u64> = (0..48)
            .filter(|&i| Sample::generate(Split::Validation, i, 64).label == Label::Fake(kind))
            .take(2)
            .collect();
        assert_eq!(of_kind.len(), 2, "{kind:?}");
        let total = |s: &ForgeryStrength| of_kind.iter().map(|&i| change(s, i)).sum::<i64>();
        let (subtle, visible) = (total(&ForgeryStrength::SUBTLE), total(&ForgeryStrength::VISIBLE));
        // A face swap's change is mostly the donor's face and a blur mismatch's the blur
        // itself, alike at both strengths; the small forgeries, the ones the detectors missed,
        // must change far more.
        let factor = if matches!(kind, ForgeryKind::FaceSwap | ForgeryKind::BlurMismatch) { 1.0 } else { 1.25 };
        assert!(visible as f64 > factor * subtle as f64, "{kind:?}: visible changes {visible}, subtle {subtle}");
    }
}

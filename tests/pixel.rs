//! Image-space baselines: budgets in /255 of the [0, 1] image, projection, seeded random
//! starts, and the detector's own input normalisation.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::search::{PixelAttack, PixelMethod};

fn input(zoo: &unforge::zoo::Zoo) -> burn::tensor::Tensor<4> {
    let size = zoo.generator.size;
    test_image(size).to_tensor(size, &Device::flex())
}

/// Largest change in /255 units of the [0, 1] image.
fn linf_255(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) * 255.0 / 2.0
}

#[test]
fn fgsm_moves_every_pixel_by_eps_unless_clipped() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let x = input(&zoo);
    let attack = PixelAttack::torchattacks(PixelMethod::Fgsm);
    let adv = to_vec(attack.run(det, x.clone()).unwrap());
    let orig = to_vec(x);
    for (a, o) in adv.iter().zip(&orig) {
        let step = (a - o).abs() * 255.0 / 2.0;
        let clipped = *a == -1.0 || *a == 1.0;
        assert!(clipped || (step - 8.0).abs() < 1e-3 || step == 0.0, "a pixel moved {step}/255");
    }
    assert!(linf_255(&adv, &orig) > 7.99);
}

#[test]
fn iterative_attacks_stay_in_the_ball_and_lower_p_fake() {
    let zoo = tiny_zoo();
    for (_, det) in &zoo.detectors {
        let x = input(&zoo);
        let orig = to_vec(x.clone());
        let before = to_vec(det.p_fake(x.clone()))[0];
        for method in [
            PixelMethod::Pgd { random_start: true },
            PixelMethod::Pgd { random_start: false },
            PixelMethod::Mifgsm { mu: 1.0 },
        ] {
            let attack = PixelAttack { eps: 4.0, alpha: 1.0, steps: 6, ..PixelAttack::torchattacks(method) };
            let adv = attack.run(det, x.clone()).unwrap();
            let after = to_vec(det.p_fake(adv.clone()))[0];
            let adv = to_vec(adv);
            assert!(linf_255(&adv, &orig) <= 4.0 + 1e-3, "{method:?} left the ε-ball");
            assert!(adv.iter().all(|v| (-1.0..=1.0).contains(v)), "{method:?} left the image range");
            assert!(after < before, "{method:?}: P(fake) {before} → {after}");
        }
    }
}

#[test]
fn random_start_is_seeded() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let x = input(&zoo);
    let attack =
        |seed| PixelAttack { steps: 1, seed, ..PixelAttack::torchattacks(PixelMethod::Pgd { random_start: true }) };
    let a = to_vec(attack(1).run(det, x.clone()).unwrap());
    let b = to_vec(attack(1).run(det, x.clone()).unwrap());
    let c = to_vec(attack(2).run(det, x).unwrap());
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "same seed, different bits");
    assert_ne!(a, c);
}

#[test]
fn budget_is_in_image_space_under_imagenet_normalisation() {
    let mut zoo = tiny_zoo();
    zoo.detectors[0].1.normalization = unforge::networks::Normalization::ImageNet;
    let (_, det) = &zoo.detectors[0];
    let x = input(&zoo);
    let orig = to_vec(x.clone());
    let adv = to_vec(
        PixelAttack { eps: 3.0, ..PixelAttack::torchattacks(PixelMethod::Mifgsm { mu: 1.0 }) }.run(det, x).unwrap(),
    );
    let l = linf_255(&adv, &orig);
    assert!(l <= 3.0 + 1e-3 && l > 2.9, "ε measured in the image: {l}");
}

#[test]
fn bad_budgets_and_names_are_errors() {
    for attack in [
        PixelAttack { eps: 0.0, ..PixelAttack::torchattacks(PixelMethod::Fgsm) },
        PixelAttack { eps: 300.0, ..PixelAttack::torchattacks(PixelMethod::Fgsm) },
        PixelAttack { alpha: f32::NAN, ..PixelAttack::torchattacks(PixelMethod::Fgsm) },
        PixelAttack { steps: 0, ..PixelAttack::torchattacks(PixelMethod::Pgd { random_start: true }) },
        PixelAttack::torchattacks(PixelMethod::Mifgsm { mu: -1.0 }),
    ] {
        assert!(attack.validate().is_err(), "{attack:?}");
    }
    assert!(PixelMethod::from_name("cw", 1.0).unwrap_err().to_string().contains("unknown pixel attack `cw`"));
    assert_eq!(PixelMethod::from_name("bim", 1.0).unwrap(), PixelMethod::Pgd { random_start: false });
}

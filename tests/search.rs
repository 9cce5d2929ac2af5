//! The latent search: loss goes down, masks hold, gradients are right, early stop fires.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::block_on;
use unforge::search::{LatentSearch, Level, Loss, Method, Objective, RowMask, SearchConfig};

fn start_latent(zoo: &unforge::zoo::Zoo) -> burn::tensor::Tensor<3> {
    zoo.invert(&test_image(48), &Device::flex()).latent
}

#[test]
fn one_step_lowers_the_loss() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let latent = start_latent(&zoo);
    let config = SearchConfig { alpha: 0.01, max_steps: 2, kappa: 0.0, ..SearchConfig::default() };
    let mut search = LatentSearch::new(&zoo.generator, det, latent, &RowMask::full(zoo.manifest.n_latent), config).unwrap();
    let first = block_on(search.step()).unwrap();
    let second = block_on(search.step()).unwrap();
    assert!(first.p_fake[0] >= 0.5, "the start must not already count as real: {:?}", first.p_fake);
    assert!(second.loss < first.loss, "loss {} → {}", first.loss, second.loss);
}

#[test]
fn rows_outside_the_mask_are_bit_identical() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let latent = start_latent(&zoo);
    let before = to_vec(latent.clone());
    let mask = RowMask::from_levels(&[Level::Middle], &zoo.manifest.levels, zoo.manifest.n_latent).unwrap();
    let config = SearchConfig { alpha: 0.05, max_steps: 3, kappa: 0.0, ..SearchConfig::default() };
    let mut search = LatentSearch::new(&zoo.generator, det, latent, &mask, config).unwrap();
    while !search.is_done() {
        block_on(search.step()).unwrap();
    }
    let after = to_vec(search.latent());
    let sd = before.len() / zoo.manifest.n_latent;
    let mut moved_inside = 0;
    for row in 0..zoo.manifest.n_latent {
        let (b, a) = (&before[row * sd..(row + 1) * sd], &after[row * sd..(row + 1) * sd]);
        if mask.contains(row) {
            moved_inside += b.iter().zip(a).filter(|(x, y)| x != y).count();
        } else {
            assert!(b.iter().zip(a).all(|(x, y)| x.to_bits() == y.to_bits()), "row {row} changed");
        }
    }
    assert!(moved_inside > 0, "the masked rows did not move");
}

#[test]
fn gradient_matches_finite_differences() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let latent = start_latent(&zoo);
    let objective = Objective { generator: &zoo.generator, detector: det, target: 0.0, loss: Loss::Mse };
    let (_, _, grad) = objective.gradient(&latent);
    let shape = latent.dims();
    let g = to_vec(grad);
    let w = to_vec(latent);
    let norm = g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    assert!(norm > 0.0, "zero gradient");
    // Directional derivative along ∇/|∇| must equal |∇|.
    let loss_at = |t: f32| {
        let moved: Vec<f32> = w.iter().zip(&g).map(|(w, g)| w + t * g / norm as f32).collect();
        let (loss, _, _) = objective.gradient(&tensor3(moved, shape));
        to_vec(loss)[0] as f64
    };
    let h = 2.5e-4;
    let fd = (loss_at(h) - loss_at(-h)) / (2.0 * h as f64);
    let rel = (fd - norm).abs() / norm;
    assert!(rel < 2e-2, "finite difference {fd} vs autodiff {norm} (rel {rel})");

    // And per coordinate, for the largest component.
    let (i, gi) = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
    let coord = |t: f32| {
        let mut moved = w.clone();
        moved[i] += t;
        let (loss, _, _) = objective.gradient(&tensor3(moved, shape));
        to_vec(loss)[0] as f64
    };
    let fd_i = (coord(h) - coord(-h)) / (2.0 * h as f64);
    assert!((fd_i - *gi as f64).abs() < 0.05 * gi.abs() as f64 + 1e-6, "coordinate {i}: fd {fd_i} vs {gi}");
}

#[test]
fn early_stop_fires_at_the_first_step_past_kappa() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let config = SearchConfig { alpha: 0.1, max_steps: 60, kappa: 0.1, ..SearchConfig::default() };
    let mut search =
        LatentSearch::new(&zoo.generator, det, start_latent(&zoo), &RowMask::full(zoo.manifest.n_latent), config.clone()).unwrap();
    let mut reports = Vec::new();
    while !search.is_done() {
        reports.push(block_on(search.step()).unwrap());
    }
    let p: Vec<f32> = reports.iter().map(|r| r.p_fake[0]).collect();
    let first_hit = p.iter().position(|&p| config.reached(p)).expect("κ never reached in 60 steps");
    assert_eq!(search.steps_taken(), first_hit + 1, "did not stop at the first success: {p:?}");
    assert!(p[first_hit] < 0.45, "P(real) − P(fake) > 0.1 means P(fake) < 0.45, got {}", p[first_hit]);
    assert!(p[..first_hit].iter().all(|&v| v >= 0.45));
    assert_eq!(reports.last().unwrap().active, vec![false]);
}

#[test]
fn batched_search_stops_images_independently() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let one = start_latent(&zoo);
    let batch = burn::tensor::Tensor::cat(vec![one.clone(), one.clone() * 1.5], 0);
    let config = SearchConfig { alpha: 0.05, max_steps: 30, kappa: 0.0, ..SearchConfig::default() };
    let mut search = LatentSearch::new(&zoo.generator, det, batch, &RowMask::full(zoo.manifest.n_latent), config.clone()).unwrap();
    let mut stopped_at = [None, None];
    while !search.is_done() {
        let r = block_on(search.step()).unwrap();
        for i in 0..2 {
            if !r.active[i] && stopped_at[i].is_none() {
                stopped_at[i] = Some((r.step, to_vec(search.latent())));
            }
        }
    }
    // An image that stopped keeps its latent from then on.
    let final_latent = to_vec(search.latent());
    let per = final_latent.len() / 2;
    for i in 0..2 {
        if let Some((_, at_stop)) = &stopped_at[i] {
            assert_eq!(&at_stop[i * per..(i + 1) * per], &final_latent[i * per..(i + 1) * per], "image {i} moved after stopping");
        }
    }
    assert!(stopped_at.iter().any(Option::is_some), "no image reached P(fake) < 0.5 in 30 steps");
}

#[test]
fn bad_search_settings_are_errors() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let latent = start_latent(&zoo);
    let bad = SearchConfig { alpha: -1.0, ..SearchConfig::default() };
    assert!(LatentSearch::new(&zoo.generator, det, latent.clone(), &RowMask::full(zoo.manifest.n_latent), bad).is_err());
    assert!(RowMask::from_rows(&[99], zoo.manifest.n_latent).is_err());
    assert!(RowMask::from_rows(&[], zoo.manifest.n_latent).is_err());
    let wrong_rows = RowMask::full(zoo.manifest.n_latent + 1);
    assert!(LatentSearch::new(&zoo.generator, det, latent, &wrong_rows, SearchConfig::default()).is_err());
    assert!("X".parse::<Level>().is_err());
}

#[test]
fn level_bands_are_thirds_like_the_paper() {
    let b = unforge::search::RowBands::thirds(18);
    assert_eq!(b.shallow, (0..6).collect::<Vec<_>>());
    assert_eq!(b.middle, (6..12).collect::<Vec<_>>());
    assert_eq!(b.deep, (12..18).collect::<Vec<_>>());
}

fn run_search(config: SearchConfig) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let start = start_latent(&zoo);
    let mut search = LatentSearch::new(&zoo.generator, det, start.clone(), &RowMask::full(zoo.manifest.n_latent), config).unwrap();
    let mut losses = Vec::new();
    while !search.is_done() {
        losses.push(block_on(search.step()).unwrap().loss);
    }
    (losses, to_vec(start), to_vec(search.latent()))
}

#[test]
fn every_method_lowers_the_loss() {
    for method in [Method::Ifgsm, Method::Mifgsm { mu: 1.0 }, Method::Nifgsm { mu: 1.0 }, Method::Pgd { beta: 0.05 }] {
        let config = SearchConfig { method, alpha: 0.01, max_steps: 4, kappa: 0.0, ..SearchConfig::default() };
        let (losses, _, _) = run_search(config);
        assert!(losses.last().unwrap() < &losses[0], "{method:?}: {losses:?}");
    }
}

#[test]
fn momentum_changes_the_path_and_pgd_stays_in_its_ball() {
    let base = SearchConfig { alpha: 0.02, max_steps: 5, kappa: 0.0, target: 0.0, ..SearchConfig::default() };
    let (_, _, plain) = run_search(base.clone());
    let (_, _, momentum) = run_search(SearchConfig { method: Method::Mifgsm { mu: 1.0 }, ..base.clone() });
    assert_ne!(plain, momentum);
    let beta = 0.03;
    let (_, start, end) = run_search(SearchConfig { method: Method::Pgd { beta }, ..base });
    let far = start.iter().zip(&end).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(far <= beta + 1e-6, "PGD left its L∞ ball: {far}");
    assert!(far > beta * 0.5, "PGD barely moved: {far}");
}

#[test]
fn cross_entropy_loss_is_reported_and_followed() {
    let config = SearchConfig { loss: Loss::CrossEntropy, alpha: 0.01, max_steps: 3, kappa: 0.0, ..SearchConfig::default() };
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let mut search = LatentSearch::new(&zoo.generator, det, start_latent(&zoo), &RowMask::full(zoo.manifest.n_latent), config).unwrap();
    let first = block_on(search.step()).unwrap();
    assert!((first.loss - (-(1.0 - first.p_fake[0]).ln())).abs() < 1e-5, "{first:?}");
    let mut last = first.clone();
    while !search.is_done() {
        last = block_on(search.step()).unwrap();
    }
    assert!(last.loss < first.loss);
    assert!(Method::from_name("xgsm", 1.0, 0.1).is_err());
    assert!("hinge".parse::<Loss>().is_err());
    assert!(SearchConfig { method: Method::Pgd { beta: 0.0 }, ..SearchConfig::default() }.validate().is_err());
}

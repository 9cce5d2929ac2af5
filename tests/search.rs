//! The latent search: loss goes down, masks hold, gradients are right, early stop fires.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::block_on;
use unforge::metrics::QualityNetworks;
use unforge::search::{LatentSearch, Level, Loss, Method, Objective, Preset, Regularisers, RowMask, SearchConfig};
use unforge::zoo::Zoo;

fn start_latent(zoo: &unforge::zoo::Zoo) -> burn::tensor::Tensor<3> {
    zoo.inverter().invert(&test_image(48), &Device::flex()).latent
}

#[test]
fn one_step_lowers_the_loss() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let latent = start_latent(&zoo);
    let config = SearchConfig { alpha: 0.01, max_steps: 2, kappa: 0.0, ..SearchConfig::default() };
    let mut search =
        LatentSearch::new(&zoo.generator, det, latent, &RowMask::full(zoo.manifest.n_latent), config).unwrap();
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
    let objective = Objective::new(&zoo.generator, det, 0.0, Loss::Mse);
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
    let mut search = LatentSearch::new(
        &zoo.generator,
        det,
        start_latent(&zoo),
        &RowMask::full(zoo.manifest.n_latent),
        config.clone(),
    )
    .unwrap();
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
    let mut search =
        LatentSearch::new(&zoo.generator, det, batch, &RowMask::full(zoo.manifest.n_latent), config.clone()).unwrap();
    let mut stopped_at = [None, None];
    while !search.is_done() {
        let r = block_on(search.step()).unwrap();
        for (stopped, active) in stopped_at.iter_mut().zip(&r.active) {
            if !active && stopped.is_none() {
                *stopped = Some((r.step, to_vec(search.latent())));
            }
        }
    }
    // An image that stopped keeps its latent from then on.
    let final_latent = to_vec(search.latent());
    let per = final_latent.len() / 2;
    for i in 0..2 {
        if let Some((_, at_stop)) = &stopped_at[i] {
            assert_eq!(
                &at_stop[i * per..(i + 1) * per],
                &final_latent[i * per..(i + 1) * per],
                "image {i} moved after stopping"
            );
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
    assert!(
        LatentSearch::new(&zoo.generator, det, latent.clone(), &RowMask::full(zoo.manifest.n_latent), bad).is_err()
    );
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
    let mut search =
        LatentSearch::new(&zoo.generator, det, start.clone(), &RowMask::full(zoo.manifest.n_latent), config).unwrap();
    let mut losses = Vec::new();
    while !search.is_done() {
        losses.push(block_on(search.step()).unwrap().loss);
    }
    (losses, to_vec(start), to_vec(search.latent()))
}

#[test]
fn every_method_lowers_the_loss() {
    for method in [
        Method::Ifgsm,
        Method::Mifgsm { mu: 1.0 },
        Method::Nifgsm { mu: 1.0 },
        Method::Pgd { beta: 0.05 },
        Method::Rprop { max_scale: 8.0 },
    ] {
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
    let config =
        SearchConfig { loss: Loss::CrossEntropy, alpha: 0.01, max_steps: 3, kappa: 0.0, ..SearchConfig::default() };
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let mut search =
        LatentSearch::new(&zoo.generator, det, start_latent(&zoo), &RowMask::full(zoo.manifest.n_latent), config)
            .unwrap();
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

#[test]
fn presets_are_the_official_settings() {
    let paper = Preset::Paper.config();
    assert_eq!((paper.method, paper.alpha, paper.max_steps, paper.kappa), (Method::Ifgsm, 8e-4, 1000, 0.2));
    assert_eq!(Preset::PAPER_BETA, 0.05);
    let readme = Preset::Readme.config();
    assert_eq!((readme.alpha, readme.max_steps, readme.kappa, readme.refine), (2e-4, 50, 0.2, 0));
    assert_eq!(SearchConfig::default(), readme);
    let fast = Preset::Fast.config();
    assert!(fast.max_steps * 5 <= paper.max_steps && fast.refine > 0);
    assert_eq!((fast.method, fast.alpha), (Method::Rprop { max_scale: 8.0 }, paper.alpha));
    // The fast preset holds identity where the zoo can measure it; the others never add it.
    assert_eq!(Preset::Fast.config_with_identity(true).regularisers.id, Preset::FAST_ID_WEIGHT);
    assert_eq!(Preset::Fast.config_with_identity(false), fast);
    assert_eq!(Preset::Paper.config_with_identity(true), paper);
    assert_eq!("FAST".parse::<Preset>().unwrap(), Preset::Fast);
    assert!("slow".parse::<Preset>().unwrap_err().to_string().contains("unknown preset `slow`"));
}

/// The gradient at the inversion with these regulariser weights.
fn regularised_gradient(
    zoo: &unforge::zoo::Zoo,
    start: &burn::tensor::Tensor<3>,
    weights: Regularisers,
) -> unforge::Result<Vec<f32>> {
    let (_, det) = &zoo.detectors[0];
    let reconstruction = zoo.generator.synthesize(start.clone());
    let networks = QualityNetworks { perceptual: zoo.perceptual.as_ref(), identity: zoo.identity.as_ref() };
    let objective =
        Objective::new(&zoo.generator, det, 0.0, Loss::Mse).with_regularisers(weights, reconstruction, networks)?;
    // Away from the reconstruction, so the quality terms have a gradient.
    let moved = start.clone() + 0.05;
    Ok(to_vec(objective.gradient(&moved).2))
}

#[test]
fn regularisers_change_the_gradient_and_need_their_networks() {
    let zoo = tiny_zoo_with_metrics();
    let start = start_latent(&zoo);
    let none = regularised_gradient(&zoo, &start, Regularisers::default()).unwrap();
    let zero = regularised_gradient(&zoo, &start, Regularisers { pixel: 0.0, lpips: 0.0, id: 0.0 }).unwrap();
    assert!(none.iter().zip(&zero).all(|(a, b)| a.to_bits() == b.to_bits()), "λ = 0 must be the plain objective");
    for weights in [
        Regularisers { pixel: 10.0, ..Default::default() },
        Regularisers { lpips: 10.0, ..Default::default() },
        Regularisers { id: 10.0, ..Default::default() },
    ] {
        let g = regularised_gradient(&zoo, &start, weights).unwrap();
        let diff = g.iter().zip(&none).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff > 1e-6, "{weights:?} did not change the gradient");
    }
    let plain = tiny_zoo();
    let start = start_latent(&plain);
    for (weights, needle) in [
        (Regularisers { lpips: 1.0, ..Default::default() }, "LPIPS"),
        (Regularisers { id: 1.0, ..Default::default() }, "ArcFace"),
    ] {
        let err = regularised_gradient(&plain, &start, weights).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    assert!(
        SearchConfig { regularisers: Regularisers { pixel: -1.0, ..Default::default() }, ..SearchConfig::default() }
            .validate()
            .is_err()
    );
}

#[test]
fn pixel_regulariser_keeps_the_counterfactual_closer() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let start = start_latent(&zoo);
    let distance = |weight: f32| {
        let config = SearchConfig {
            alpha: 0.01,
            max_steps: 6,
            kappa: 0.0,
            method: Method::Pgd { beta: 1.0 },
            regularisers: Regularisers { pixel: weight, ..Default::default() },
            ..SearchConfig::default()
        };
        let mut search =
            LatentSearch::new(&zoo.generator, det, start.clone(), &RowMask::full(zoo.manifest.n_latent), config)
                .unwrap()
                .with_regularisers(QualityNetworks::default())
                .unwrap();
        while !search.is_done() {
            block_on(search.step()).unwrap();
        }
        let (a, b) =
            (to_vec(zoo.generator.synthesize(start.clone())), to_vec(zoo.generator.synthesize(search.latent())));
        a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f32>()
    };
    let (free, held) = (distance(0.0), distance(1000.0));
    assert!(held < free, "pixel λ did not hold the image: {held} vs {free}");
}

#[test]
fn refine_moves_back_towards_the_boundary_and_keeps_success() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let start = start_latent(&zoo);
    let run = |refine: usize| {
        let config = SearchConfig { alpha: 0.05, max_steps: 40, kappa: 0.1, refine, ..SearchConfig::default() };
        let mut search = LatentSearch::new(
            &zoo.generator,
            det,
            start.clone(),
            &RowMask::full(zoo.manifest.n_latent),
            config.clone(),
        )
        .unwrap();
        while !search.is_done() {
            block_on(search.step()).unwrap();
        }
        assert!(search.active().iter().all(|a| !a), "the search must succeed for this test");
        block_on(search.refine()).unwrap();
        let p = to_vec(det.p_fake(zoo.generator.synthesize(search.latent())))[0];
        let moved = to_vec(search.latent()).iter().zip(to_vec(start.clone())).map(|(a, b)| (a - b).abs()).sum::<f32>();
        (config.reached(p), p, moved)
    };
    let (ok0, p0, d0) = run(0);
    let (ok3, p3, d3) = run(3);
    assert!(ok0 && ok3, "refined counterfactual must still meet κ: {p0} {p3}");
    assert!(d3 < d0, "refine must end closer to the start: {d3} vs {d0}");
    assert!(p3 >= p0, "refine ends nearer the boundary: {p3} vs {p0}");
}

#[test]
fn rprop_starts_as_ifgsm_and_grows_steady_coordinates() {
    let base = SearchConfig { alpha: 0.001, max_steps: 1, kappa: 0.0, ..SearchConfig::default() };
    let (_, _, ifgsm) = run_search(base.clone());
    let (_, _, rprop) = run_search(SearchConfig { method: Method::Rprop { max_scale: 8.0 }, ..base.clone() });
    assert!(
        ifgsm.iter().zip(&rprop).all(|(a, b)| a.to_bits() == b.to_bits()),
        "the first Rprop step is an I-FGSM step"
    );
    // Six steps: I-FGSM moves a coordinate at most 6α; a coordinate whose sign holds moves
    // α(1 + 1.2 + … + 1.2⁵) ≈ 9.93α under Rprop.
    let six = SearchConfig { max_steps: 6, ..base };
    let (_, start, end) = run_search(SearchConfig { method: Method::Rprop { max_scale: 8.0 }, ..six.clone() });
    let far = start.iter().zip(&end).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / six.alpha;
    assert!(far > 6.3 && far < 9.95, "largest Rprop move {far}α");
    let (_, start, end) = run_search(SearchConfig { method: Method::Rprop { max_scale: 1.0 }, ..six.clone() });
    let far = start.iter().zip(&end).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / six.alpha;
    assert!(far <= 6.0 + 1e-3, "max_scale 1 caps the step at α: {far}α");
    assert!(SearchConfig { method: Method::Rprop { max_scale: 0.5 }, ..SearchConfig::default() }.validate().is_err());
    assert_eq!(
        Method::from_name("rprop", 1.0, 0.1).unwrap(),
        Method::Rprop { max_scale: unforge::search::RPROP_MAX_SCALE }
    );
}

#[test]
fn live_views_show_the_point_each_step_evaluated() {
    use unforge::explanation::{ExplainRequest, Live, Progress, explain, observer};
    let zoo = tiny_zoo();
    // κ 0.99: no early stop within the four steps.
    let config = SearchConfig { alpha: 0.05, max_steps: 4, kappa: 0.99, ..SearchConfig::default() };
    let mask = RowMask::full(zoo.manifest.n_latent);
    let victim = zoo.detectors.iter().position(|(n, _)| n == "xception").unwrap();
    let (mut seen, mut thumbnails) = (Vec::new(), 0);
    let live = Live { all_detectors: true, thumbnail_every: 2 };
    let request = ExplainRequest { live, ..ExplainRequest::new("xception", mask, config) };
    block_on(explain(
        &zoo,
        &test_image(32),
        &request,
        &mut observer(|progress| {
            let Progress::Search(report, view) = progress else {
                assert!(matches!(progress, Progress::Stage(_)), "no pivotal tuning was asked for");
                return;
            };
            let all = view.p_fake_all.as_ref().expect("every detector at every step");
            assert_eq!(all.len(), zoo.detectors.len());
            seen.push((report.p_fake[0], all[victim]));
            thumbnails += view.thumbnail.is_some() as usize;
        }),
    ))
    .unwrap();
    assert_eq!(seen.len(), 4);
    // The victim's live score is the one the step itself measured.
    for (step, live) in &seen {
        assert!((step - live).abs() < 1e-5, "step {step} vs live view {live}");
    }
    assert_eq!(thumbnails, 2, "steps 0 and 2");
}

/// A preview renders the skip output at its side: at the full size it is the generator itself,
/// bit for bit; below, the rows above it change nothing and the rows it reads do.
#[test]
fn a_preview_renders_the_lower_layers_only() {
    let zoo = tiny_zoo();
    let g = &zoo.generator;
    let latent = start_latent(&zoo);
    let full = g.clone().with_render_size(g.size).unwrap();
    assert_eq!(to_vec(full.synthesize(latent.clone())), to_vec(g.synthesize(latent.clone())));
    let preview = g.clone().with_render_size(g.size / 2).unwrap();
    assert_eq!(preview.synthesize(latent.clone()).dims(), [1, 3, g.size / 2, g.size / 2]);
    let rows = preview.rows_rendered();
    assert_eq!(rows, zoo.manifest.n_latent - 2, "a 16 px preview of the 32 px generator reads all but two rows");
    let nudged = |row: usize| {
        let mut v = to_vec(latent.clone());
        let sd = g.style_dim;
        v[row * sd..(row + 1) * sd].iter_mut().for_each(|x| *x += 0.5);
        tensor3(v, latent.dims())
    };
    let base = to_vec(preview.synthesize(latent.clone()));
    assert_eq!(to_vec(preview.synthesize(nudged(rows))), base, "a row above the preview changed it");
    assert_ne!(to_vec(preview.synthesize(nudged(rows - 1))), base);
    assert_ne!(to_vec(g.synthesize(nudged(rows))), to_vec(g.synthesize(latent.clone())));
    for bad in [3, 12, 2 * g.size] {
        assert!(g.clone().with_render_size(bad).is_err(), "{bad}");
    }
}

/// An explanation searched through a preview: the steps see the preview, the counterfactual
/// and its scores are the full size's, the report keeps the preview's last P(fake); a preview
/// smaller than a detector's input is refused by the detector's name.
#[test]
fn an_explanation_through_a_preview_renders_the_counterfactual_at_full_size() {
    use unforge::explanation::{explain, observer};
    use unforge::options::ExplainOptions;
    let size = 64;
    let (mut manifest, files) = unforge::zoo_init::TinyZooSpec { size, ..tiny_spec() }.build().unwrap();
    let refused = {
        let zoo = Zoo::load(manifest.clone(), &files, &Device::flex()).unwrap();
        assert_eq!(zoo.preview_sizes(), Vec::<usize>::new(), "64 px detectors on a 64 px generator: no preview");
        let options: ExplainOptions = serde_json::from_str(r#"{"search": {"preview": 32, "steps": 2}}"#).unwrap();
        let request = options.resolve(&zoo).unwrap();
        block_on(explain(&zoo, &test_image(size), &request, &mut observer(|_| {}))).unwrap_err().to_string()
    };
    assert!(refused.contains("preview size 32") && refused.contains("takes 64 px"), "{refused}");
    // A detector too small for its strided stages is refused when the zoo loads, not by a panic.
    let mut tiny = manifest.clone();
    tiny.networks.iter_mut().filter(|n| n.role == unforge::zoo::Role::Detector).for_each(|n| n.input_size = 16);
    let Err(err) = Zoo::load(tiny, &files, &Device::flex()) else { panic!("a 16 px detector was accepted") };
    let err = err.to_string();
    assert!(err.contains("takes 16 px, less than the 32 px"), "{err}");
    // Detectors that look at 32 px (their global pooling takes any size).
    for net in manifest.networks.iter_mut().filter(|n| n.role == unforge::zoo::Role::Detector) {
        net.input_size = 32;
    }
    let zoo = Zoo::load(manifest, &files, &Device::flex()).unwrap();
    assert_eq!(zoo.preview_sizes(), vec![32], "the page offers what the search accepts");
    let options: ExplainOptions = serde_json::from_str(
        r#"{"search": {"preview": 32, "steps": 3, "alpha": 0.05, "kappa": 0}, "live": {"thumbnailEvery": 1}}"#,
    )
    .unwrap();
    let request = options.resolve(&zoo).unwrap();
    let mut thumbnails = Vec::new();
    let result = block_on(explain(
        &zoo,
        &test_image(size),
        &request,
        &mut observer(|p| {
            if let unforge::explanation::Progress::Search(_, view) = p
                && let Some(t) = &view.thumbnail
            {
                thumbnails.push((t.width, t.height));
            }
        }),
    ))
    .unwrap();
    let preview = result.preview.expect("the search ran through the preview");
    assert_eq!(preview.size, 32);
    assert!((0.0..=1.0).contains(&preview.p_fake));
    assert!(!thumbnails.is_empty() && thumbnails.iter().all(|&t| t == (32, 32)), "{thumbnails:?}");
    assert_eq!((result.counterfactual.width, result.counterfactual.height), (size, size));
    let victim = result.scores.iter().find(|s| s.detector == result.detector).unwrap();
    assert_eq!(victim.counterfactual, result.p_fake_counterfactual);
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(json["preview"]["size"], 32);
}

//! The experiment tables: counts and means from known records, the experiment list a plan
//! expands to, and real runs of both attack kinds on the tiny zoo.

mod common;

use std::collections::BTreeMap;

use burn::tensor::Device;
use common::*;
use unforge::block_on;
use unforge::eval::{EvalPlan, Experiment, Record, Trial, markdown, pixel_attacks, run_one, tables};
use unforge::explain::{GroundTruth, Localisation};
use unforge::explanation::Face;
use unforge::image::{RgbaImage, Square};
use unforge::metrics::Quality;
use unforge::search::{Level, Preset, SearchConfig};

fn quality(psnr: f64, lpips: Option<f64>, id: Option<f64>) -> Quality {
    Quality {
        psnr_db: psnr,
        ssim: Some(0.9),
        tv_reference: 1.0,
        tv_changed: 2.0,
        tv_l1_reference: 10.0,
        tv_l1_changed: 20.0,
        esnle_reference: Some(0.5),
        esnle_changed: None,
        lpips,
        id_similarity: id,
    }
}

fn record(
    image: &str,
    victim: &str,
    experiment: &str,
    (detected, success, first): (bool, bool, Option<usize>),
    after: [f32; 2],
    psnr: f64,
) -> Record {
    Record {
        image: image.into(),
        victim: victim.into(),
        experiment: experiment.into(),
        p_fake_before: if detected { 0.8 } else { 0.3 },
        p_fake_after: after[0],
        detected_before: detected,
        success,
        steps: first.map_or(50, |s| s + 1),
        first_success_step: first,
        after: BTreeMap::from([("a".to_string(), after[0]), ("b".to_string(), after[1])]),
        quality: quality(psnr, Some(0.1 * psnr), Some(if psnr > 25.0 { 0.9 } else { 0.3 })),
        localisation: None,
        preview: None,
        seconds: 1.0,
    }
}

fn plan() -> EvalPlan {
    EvalPlan {
        identity_network: false,
        search: SearchConfig::default(),
        levels: vec![Level::Full],
        pixel: pixel_attacks(&["fgsm"], 8.0, 2.0, 10, 1.0, 0).unwrap(),
        level_ablation: true,
        alphas: vec![2e-4, 8e-4],
        curve: true,
        id_threshold: 0.5,
    }
}

#[test]
fn a_plan_expands_to_the_papers_experiments() {
    let tags: Vec<String> = plan().experiments().iter().map(|e| e.tag().to_string()).collect();
    // The main run covers full and α 2e-4, so neither is repeated.
    assert_eq!(
        tags,
        ["latent", "fgsm", "latent-S", "latent-M", "latent-D", "latent-alpha-0.0008", "preset-paper", "preset-fast"]
    );
    let Experiment::Latent { config, levels, .. } = &plan().experiments()[6] else { panic!() };
    assert_eq!((config, levels.as_slice()), (&Preset::Paper.config(), [Level::Full].as_slice()));
    // Every latent experiment, the presets' included, starts from the plan's inversion.
    let tuning =
        unforge::inversion::PivotalTuning { steps: 7, learning_rate: 1e-3, ..unforge::inversion::PivotalTuning::off() };
    let tuned = EvalPlan { search: SearchConfig { pivotal_tuning: tuning, ..SearchConfig::default() }, ..plan() };
    for e in tuned.experiments() {
        if let Experiment::Latent { config, tag, .. } = e {
            assert_eq!(config.pivotal_tuning, tuning, "{tag}");
        }
    }
}

#[test]
fn tables_count_only_detected_images_and_average_successes() {
    let detectors = vec!["a".to_string(), "b".to_string()];
    let experiments = plan().experiments();
    let records = vec![
        // Victim a, latent: 3 detected (2 fooled: one transfers to b), 1 already real.
        record("1", "a", "latent", (true, true, Some(3)), [0.2, 0.4], 30.0),
        record("2", "a", "latent", (true, true, Some(40)), [0.3, 0.9], 20.0),
        record("3", "a", "latent", (true, false, None), [0.7, 0.9], 10.0),
        record("4", "a", "latent", (false, true, Some(0)), [0.2, 0.2], 50.0),
        record("1", "a", "fgsm", (true, true, None), [0.1, 0.8], 40.0),
        record("1", "a", "latent-M", (true, true, Some(5)), [0.1, 0.8], 40.0),
        record("2", "a", "latent-M", (true, false, None), [0.6, 0.8], 40.0),
        record("1", "a", "preset-fast", (true, true, Some(4)), [0.1, 0.8], 40.0),
        record("2", "a", "preset-fast", (true, true, Some(150)), [0.1, 0.8], 40.0),
    ];
    let t = tables(&records, &detectors, &experiments, 0.5, &BTreeMap::new());
    let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Tab. 1: quality on successful images",
            "Tab. 2/3: transfer",
            "Tab. 4: level ablation",
            "Tab. 5: step size α",
            "ASR against steps"
        ]
    );
    // Tab. 1, latent row: the two detected successes, PSNR mean 25, one of two ID ≥ 0.5.
    let row = &t[0].rows[0];
    assert_eq!(&row[..5], ["a", "latent", "2", "0.600", "50.0"]);
    assert_eq!(row[9], "25.00");
    assert_eq!(row[8], "–", "no ESNLE value means no mean");
    // Tab. 2/3: 3 detected; a fooled on 2 (66.7 %), b on 1 (33.3 %).
    assert_eq!(t[1].rows[0], ["a", "latent", "3", "66.7", "33.3"]);
    assert_eq!(t[1].rows[1], ["a", "fgsm", "1", "100.0", "0.0"]);
    // Tab. 4: M from its own run (1 of 2), full from the main run (2 of 3), S and D not run.
    assert_eq!(t[2].rows[0], ["a", "–", "50.0", "–", "66.7"]);
    // Curve: the fast preset has 1 of 2 by 5 steps and both by 200.
    let fast = t[4].rows.iter().find(|r| r[1] == "fast").unwrap();
    let col = |k: &str| t[4].header.iter().position(|h| h == k).unwrap();
    assert_eq!(
        (fast[col("≤5")].as_str(), fast[col("≤100")].as_str(), fast[col("≤200")].as_str()),
        ("50.0", "50.0", "100.0")
    );
    // Markdown and CSV carry the same cells.
    let md = markdown(&t);
    assert!(md.contains("| a | latent | 3 | 66.7 | 33.3 |"), "{md}");
    let csv = t[1].csv();
    assert!(csv.starts_with("victim,attack,n,a %,b %\n") && csv.contains("a,latent,3,66.7,33.3\n"), "{csv}");
}

#[test]
fn localisation_is_broken_down_by_forgery_kind() {
    let detectors = vec!["a".to_string(), "b".to_string()];
    let experiments = plan().experiments();
    let located = |image: &str, detected: bool, change: f64, cam: Option<f64>| Record {
        localisation: Some(Localisation { change_auroc: Some(change), cam_auroc: cam }),
        ..record(image, "a", "latent", (detected, true, Some(2)), [0.2, 0.6], 30.0)
    };
    let records = vec![
        located("1.png", true, 0.9, Some(0.7)),
        located("2.png", true, 0.7, Some(0.5)),
        located("3.png", true, 0.6, None),
        // Not detected: not counted. No kind: in the overall table only.
        located("4.png", false, 0.1, Some(0.1)),
        located("5.png", true, 0.2, Some(0.3)),
    ];
    let kinds = BTreeMap::from(
        [("1.png", "eyes"), ("2.png", "eyes"), ("3.png", "swap"), ("4.png", "swap")]
            .map(|(i, k)| (i.to_string(), k.to_string())),
    );
    let t = tables(&records, &detectors, &experiments, 0.5, &kinds);
    let overall = t.iter().find(|t| t.name == "Localisation").unwrap();
    assert_eq!(overall.rows, [["a", "latent", "4", "0.600", "0.500"]]);
    let by_kind = t.iter().find(|t| t.name == "Localisation by forgery kind").unwrap();
    assert_eq!(
        by_kind.rows,
        [["a", "latent", "eyes", "2", "0.800", "0.600"], ["a", "latent", "swap", "1", "0.600", "–"]]
    );
    let without = tables(&records, &detectors, &experiments, 0.5, &BTreeMap::new());
    assert!(without.iter().all(|t| t.name != "Localisation by forgery kind"));
}

#[test]
fn runs_of_both_kinds_make_records() {
    let zoo = tiny_zoo_with_metrics();
    let image = test_image(40);
    let device = Device::flex();
    let plan = EvalPlan { search: SearchConfig { alpha: 0.05, max_steps: 4, ..SearchConfig::default() }, ..plan() };
    let experiments = plan.experiments();
    for experiment in &experiments[..2] {
        let r = (trial(&zoo, &image, None, None, "face.png", "xception", experiment)).unwrap();
        assert_eq!(
            (r.image.as_str(), r.victim.as_str(), r.experiment.as_str()),
            ("face.png", "xception", experiment.tag())
        );
        assert_eq!(r.after.len(), 3, "every detector scores the result");
        assert_eq!(r.after["xception"], r.p_fake_after);
        assert!(r.quality.lpips.is_some() && r.quality.id_similarity.is_some(), "the zoo has the metric networks");
        assert!(r.quality.psnr_db > 0.0);
        if experiment.is_latent() {
            assert!(r.steps <= 4);
            assert_eq!(r.success, SearchConfig::default().reached(r.p_fake_after));
        } else {
            assert_eq!(r.steps, 1);
            assert_eq!(r.success, r.p_fake_after < 0.5);
        }
    }
    let err = (trial(&zoo, &image, None, None, "x", "nope", &experiments[0])).unwrap_err();
    assert!(err.to_string().contains("no detector named `nope`"));
    // With pivotal tuning, an inversion made once for the image's searches gives the record a
    // search makes with its own, and the tuned reconstruction scores differently.
    let tuning =
        unforge::inversion::PivotalTuning { steps: 3, learning_rate: 1e-3, ..unforge::inversion::PivotalTuning::off() };
    let tuned = Experiment::Latent {
        tag: "latent".into(),
        levels: plan.levels.clone(),
        config: SearchConfig { pivotal_tuning: tuning, ..plan.search.clone() },
    };
    let shared = block_on(zoo.inverter().invert_tuned(&image, &tuning, &device, &mut |_| {})).unwrap();
    let with_shared = (trial(&zoo, &image, None, Some(&shared), "face.png", "xception", &tuned)).unwrap();
    let alone = (trial(&zoo, &image, None, None, "face.png", "xception", &tuned)).unwrap();
    assert_eq!(
        (with_shared.p_fake_before, with_shared.p_fake_after, with_shared.steps),
        (alone.p_fake_before, alone.p_fake_after, alone.steps)
    );
    let untuned = (trial(&zoo, &image, None, None, "face.png", "xception", &experiments[0])).unwrap();
    assert_ne!(untuned.p_fake_before, alone.p_fake_before);
    // An inversion made with other tuning is not used: the experiment makes its own.
    let other = zoo.inverter().invert(&image, &device);
    let own = (trial(&zoo, &image, None, Some(&other), "face.png", "xception", &tuned)).unwrap();
    assert_eq!(own.p_fake_before, alone.p_fake_before);
}

#[test]
fn localisation_is_scored_against_the_mask() {
    use unforge::synth::{Sample, Split};
    let zoo = tiny_zoo();
    // A synthetic fake (face swap) at twice the generator's size, with its mask.
    let s = Sample::generate(Split::Test, 1, 64);
    let truth = GroundTruth { side: 64, altered: s.mask.iter().map(|m| *m != 0).collect() };
    let plan = EvalPlan { search: SearchConfig { alpha: 0.05, max_steps: 3, ..SearchConfig::default() }, ..plan() };
    for experiment in &plan.experiments()[..2] {
        let r = (trial(&zoo, &s.image, Some(&truth), None, "fake.png", "xception", experiment)).unwrap();
        let l = r.localisation.expect("a mask gives a localisation");
        let change = l.change_auroc.expect("the mask has both classes");
        assert!((0.0..=1.0).contains(&change), "{change}");
        assert_eq!(l.cam_auroc.is_some(), experiment.is_latent(), "{}", experiment.tag());
    }
    // A mask smaller than the generator's grid is sampled up: its top half stays the top half.
    let small = GroundTruth { side: 16, altered: (0..256).map(|i| i < 128).collect() };
    let grid = small.at(64);
    assert_eq!(grid.len(), 64 * 64);
    assert!(grid[..64 * 32].iter().all(|m| *m) && !grid[64 * 32..].iter().any(|m| *m));
    let r = (trial(&zoo, &s.image, Some(&small), None, "fake.png", "xception", &plan.experiments()[0])).unwrap();
    assert!(r.localisation.and_then(|l| l.change_auroc).is_some());
}

/// One trial on the centred square of `image`, with its truth mask when given.
fn trial(
    zoo: &unforge::zoo::Zoo,
    image: &RgbaImage,
    truth: Option<&GroundTruth>,
    inversion: Option<&unforge::inversion::Inversion>,
    name: &str,
    victim: &str,
    experiment: &Experiment,
) -> unforge::Result<Record> {
    let face = Face::cut(image, &Square::centred(image.width, image.height), truth, zoo.generator.size)?;
    block_on(run_one(zoo, &face, inversion, &Trial { image: name, victim, experiment }))
}

#[test]
fn zoo_scores_rank_each_forgery_kind_against_all_the_reals() {
    use unforge::eval::{ImageScore, ZooScores};
    use unforge::inversion::PivotalTuning;
    let zoo = tiny_zoo();
    let n = zoo.detectors.len();
    // Every detector scores the same: reals 0.2 and 0.6; swaps 0.7 and 0.9 (above both reals);
    // eyes 0.1 and 0.4 (between them: one pair of four ranked right).
    let image = |kind: Option<&str>, p: f32| ImageScore {
        kind: kind.map(String::from),
        raw: vec![p; n],
        reconstructed: vec![p; n],
        quality: quality(30.0, None, None),
    };
    let images = vec![
        image(None, 0.2),
        image(Some("face_swap"), 0.7),
        image(None, 0.6),
        image(Some("asymmetric_eyes"), 0.1),
        image(Some("face_swap"), 0.9),
        image(Some("asymmetric_eyes"), 0.4),
    ];
    let scores = ZooScores::from_images(&zoo, images, &PivotalTuning::off());
    for (name, _) in &zoo.detectors {
        assert_eq!(scores.auc_by_kind["face_swap"][name], 1.0);
        assert_eq!(scores.auc_by_kind["asymmetric_eyes"][name], 0.25);
        assert_eq!(scores.by_kind["face_swap"][name], 1.0);
        assert_eq!(scores.by_kind["asymmetric_eyes"][name], 0.0);
    }
    let table = scores.tables().into_iter().find(|t| t.name == "AUC by forgery kind").expect("the table");
    assert_eq!(table.rows[0][0], "asymmetric_eyes");
    assert_eq!(table.rows[0][1], "0.250");
    // Without reals there is nothing to rank a kind against.
    let fakes_only = ZooScores::from_images(&zoo, vec![image(Some("face_swap"), 0.7)], &PivotalTuning::off());
    assert!(fakes_only.auc_by_kind.is_empty());
}

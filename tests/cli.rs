//! The CLI: a full run writes its outputs; bad input exits non-zero with a one-line error.

mod common;

use common::unforge;
use std::process::Command;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("unforge-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn run_writes_images_and_report() {
    let zoo = tmp("zoo");
    let out = tmp("out");
    let (ok, _, err) = unforge(&["init-zoo", "--out", zoo.to_str().unwrap(), "--seed", "5"]);
    assert!(ok, "{err}");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png");
    let (ok, stdout, err) = unforge(&[
        "run",
        sample,
        "--zoo",
        zoo.to_str().unwrap(),
        "--steps",
        "3",
        "--alpha",
        "0.03",
        "--levels",
        "S,M",
        "--method",
        "mifgsm",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("P(fake)"), "{stdout}");
    for f in [
        "input.png",
        "reconstruction.png",
        "counterfactual.png",
        "residual_signed.png",
        "residual_magnitude.png",
        "inversion_error.png",
        "cam_input.png",
        "cam_reconstruction.png",
        "cam_counterfactual.png",
    ] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{f}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["result"]["history"].as_array().unwrap().len(),
        report["result"]["steps"].as_u64().unwrap() as usize
    );
    assert!(report["result"]["p_fake_counterfactual"].as_f64().is_some());
    let q = &report["result"]["quality"];
    assert!(q["psnr_db"].as_f64().is_some_and(|p| p > 0.0 && p.is_finite()), "{q}");
    assert!(q["tv_changed"].as_f64().unwrap() > 0.0 && q["tv_l1_changed"].as_f64().unwrap() > 0.0, "{q}");
    assert!(q["ssim"].as_f64().is_some_and(|s| s <= 1.0), "{q}");
    assert!(q["lpips"].is_null() && q["id_similarity"].is_null(), "the seeded zoo has no metric networks: {q}");
    let scores = report["result"]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3, "every detector is scored: {scores:?}");
    assert_eq!(report["search"]["method"]["name"], "mifgsm");

    // The W+ codes: written beside the pictures, and a second run starts from them.
    let codes = std::fs::read(out.join("latents.safetensors")).unwrap();
    let saved = unforge::inversion::LatentCodes::from_safetensors(&codes, "latents").unwrap();
    assert_eq!(saved.inversion.shape, [1, 10, 32]);
    assert_ne!(saved.counterfactual.as_ref().unwrap().data, saved.inversion.data, "the search moved nothing");
    assert_eq!(saved.metadata["zoo"], "tiny-seeded");
    assert_eq!(saved.metadata["generator_fingerprint"].len(), 16);
    let again = tmp("again");
    let latent = out.join("latents.safetensors");
    let args = ["run", sample, "--zoo", zoo.to_str().unwrap(), "--steps", "3", "--alpha", "0.03", "--levels", "S,M"];
    let args =
        [&args[..], &["--method", "mifgsm", "--latent", latent.to_str().unwrap(), "--out", again.to_str().unwrap()]];
    let (ok, _, err) = unforge(&args.concat());
    assert!(ok, "{err}");
    let resumed = std::fs::read(again.join("latents.safetensors")).unwrap();
    // The encoder's W+ read back from its file is the same start, so the same search follows.
    assert_eq!(resumed, codes, "the same start gave other codes");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(again.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["start_latent"], latent.to_str().unwrap());
    // Codes of another generator (the same name, other weights) are refused, naming both.
    let other = tmp("other-zoo");
    let (ok, _, err) = unforge(&["init-zoo", "--out", other.to_str().unwrap(), "--seed", "6"]);
    assert!(ok, "{err}");
    let (ok, _, err) =
        unforge(&["run", sample, "--zoo", other.to_str().unwrap(), "--latent", latent.to_str().unwrap()]);
    assert!(
        !ok && err.contains("made with the generator of `tiny-seeded`") && err.contains("latents.safetensors"),
        "{err}"
    );
    let weights = zoo.join("generator.safetensors");
    let (ok, _, err) = unforge(&["run", sample, "--zoo", zoo.to_str().unwrap(), "--latent", weights.to_str().unwrap()]);
    assert!(!ok && err.contains("not a W+ code file"), "{err}");
}

#[test]
fn run_takes_presets_regularisers_and_cam_layers() {
    let zoo = tmp("zoo-metrics");
    let out = tmp("out-preset");
    let (ok, _, err) = unforge(&["init-zoo", "--out", zoo.to_str().unwrap(), "--metric-networks"]);
    assert!(ok, "{err}");
    let z = zoo.to_str().unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png");
    let (ok, layers, err) = unforge(&["run", sample, "--zoo", z, "--detector", "efficientnet", "--cam-layer", "list"]);
    assert!(ok, "{err}");
    assert!(layers.lines().any(|l| l == "blocks.3") && layers.lines().last() == Some("conv_head"), "{layers}");
    let args = [
        "run",
        sample,
        "--zoo",
        z,
        "--detector",
        "efficientnet",
        "--preset",
        "fast",
        "--steps",
        "3",
        "--rows",
        "0,2",
        "--lambda-pixel",
        "1",
        "--lambda-lpips",
        "0.5",
        "--lambda-id",
        "0.5",
        "--cam",
        "layer_cam",
        "--cam-layer",
        "blocks.3",
        "--cam-class",
        "0",
        "--seed",
        "9",
        "--max-scale",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, _, err) = unforge(&args);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let search = &report["search"];
    assert_eq!(
        (search["alpha"].as_f64().unwrap() as f32, search["refine"].as_u64(), search["max_steps"].as_u64()),
        (8e-4, Some(6), Some(3))
    );
    assert_eq!((search["method"]["name"].as_str(), search["method"]["max_scale"].as_f64()), (Some("rprop"), Some(5.0)));
    assert_eq!(search["regularisers"]["lpips"], 0.5);
    assert_eq!(search["seed"], 9);
    assert_eq!(report["rows"], serde_json::json!([0, 2]));
    assert_eq!(report["cam"]["target"]["layer"], "blocks.3");
    let q = &report["result"]["quality"];
    assert!(q["lpips"].as_f64().is_some_and(|l| l >= 0.0) && q["id_similarity"].as_f64().is_some(), "{q}");
    // With an identity network the fast preset holds identity unless --lambda-id says otherwise.
    for (extra, id) in [(vec![], 1.0), (vec!["--lambda-id", "0"], 0.0)] {
        let fast_out = tmp("out-fast-id");
        let args = [
            &["run", sample, "--zoo", z, "--preset", "fast", "--steps", "2", "--out", fast_out.to_str().unwrap()][..],
            &extra[..],
        ]
        .concat();
        let (ok, _, err) = unforge(&args);
        assert!(ok, "{err}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fast_out.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["search"]["regularisers"]["id"], id, "{extra:?}");
    }
    // A zoo can take an identity network trained elsewhere (here: the one above); a file that
    // is not one is refused, naming it.
    let with_id = tmp("zoo-identity");
    let id_file = zoo.join("arcface.safetensors");
    let (ok, _, err) =
        unforge(&["init-zoo", "--out", with_id.to_str().unwrap(), "--identity", id_file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(with_id.join("zoo.json")).unwrap()).unwrap();
    let roles: Vec<&str> =
        manifest["networks"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert!(roles.contains(&"identity") && !roles.contains(&"perceptual"), "{roles:?}");
    assert_eq!(std::fs::read(with_id.join("arcface.safetensors")).unwrap(), std::fs::read(&id_file).unwrap());
    let wrong = zoo.join("xception.safetensors");
    let (ok, _, err) = unforge(&[
        "init-zoo",
        "--out",
        tmp("zoo-identity-bad").to_str().unwrap(),
        "--identity",
        wrong.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("xception.safetensors: not an identity network"), "{err}");
}

#[test]
fn run_scores_the_explanation_against_a_ground_truth_mask() {
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/synth-fake-1.png");
    let mask = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/synth-mask-1.png");
    let scored = |extra: &[&str], name: &str| {
        let out = tmp(name);
        let args = [
            &[
                "run",
                image,
                "--zoo",
                zoo,
                "--steps",
                "3",
                "--alpha",
                "0.03",
                "--truth",
                mask,
                "--out",
                out.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat();
        let (ok, stdout, err) = unforge(&args);
        assert!(ok, "{err}");
        assert!(stdout.contains("against the ground-truth mask (AUROC, 0.5 is chance): residual 0."), "{stdout}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["truth"]["mask"], mask);
        report["truth"]["localisation"].clone()
    };
    let plain = scored(&[], "out-truth");
    for key in ["change_auroc", "cam_auroc"] {
        assert!(plain[key].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{plain}");
    }
    // The score is eval's (Grad-CAM for "fake"), whatever CAM the pictures show.
    assert_eq!(scored(&["--cam", "layer_cam", "--cam-class", "0"], "out-truth-layercam"), plain);
    // A mask that is not the image's size is refused, naming it, before any work.
    let small = tmp("mask-small.png");
    std::fs::write(&small, unforge::image::RgbaImage::encode_gray_png(32, 32, &[255; 32 * 32])).unwrap();
    let (ok, _, err) = unforge(&[
        "run",
        image,
        "--zoo",
        zoo,
        "--truth",
        small.to_str().unwrap(),
        "--out",
        tmp("out-truth-bad").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("mask-small.png: the mask is 32×32, the image 128×128"), "{err}");
}

#[test]
fn run_tunes_the_generator_when_asked() {
    // The default (trained) zoo recommends tuning in its manifest; a copy recommends 30 steps
    // (quicker).
    let committed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(committed.join("zoo.json")).unwrap()).unwrap();
    assert_eq!(manifest["pivotal_tuning"]["steps"], 200);
    let copy = tmp("tune-zoo");
    std::fs::create_dir_all(&copy).unwrap();
    for file in [
        "zoo.json",
        "generator.safetensors",
        "encoder.safetensors",
        "xception.safetensors",
        "efficientnet.safetensors",
        "resnet.safetensors",
        "arcface.safetensors",
    ] {
        std::fs::copy(committed.join(file), copy.join(file)).unwrap();
    }
    manifest["pivotal_tuning"]["steps"] = 30.into();
    std::fs::write(copy.join("zoo.json"), manifest.to_string()).unwrap();
    let zoo = copy.to_str().unwrap();
    let data = tmp("tune-data");
    let (ok, _, err) = unforge(&["synth", "--count", "2", "--size", "64", "--out", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    let image = data.join("test-000001.png");
    let report = |extra: &[&str], name: &str| {
        let out = tmp(name);
        let mut args =
            vec!["run", image.to_str().unwrap(), "--zoo", zoo, "--steps", "2", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (ok, _, err) = unforge(&args);
        assert!(ok, "{err}");
        (serde_json::from_slice::<serde_json::Value>(&std::fs::read(out.join("report.json")).unwrap()).unwrap(), err)
    };
    let ((plain, quiet), (tuned, progress)) = (report(&["--tune-steps", "0"], "tune-off"), report(&[], "tune-on"));
    assert!(!quiet.contains("pivotal tuning"), "{quiet}");
    assert!(
        progress.contains("pivotal tuning    1/30  loss") && progress.contains("pivotal tuning   30/30  loss"),
        "{progress}"
    );
    assert_eq!(plain["search"]["pivotal_tuning"]["steps"], 0);
    assert_eq!(tuned["search"]["pivotal_tuning"]["steps"], 30);
    let psnr = |r: &serde_json::Value| r["result"]["inversion_psnr_db"].as_f64().unwrap();
    assert!(psnr(&tuned) > psnr(&plain) + 1.5, "{} → {}", psnr(&plain), psnr(&tuned));
    // A refined pivot alone: counted as tuning's steps, kept in the report and the codes.
    let (pivoted, progress) = report(&["--tune-steps", "0", "--pivot-steps", "20"], "pivot-on");
    assert!(progress.contains("pivotal tuning   20/20  loss"), "{progress}");
    assert_eq!(pivoted["search"]["pivotal_tuning"]["pivot"]["steps"], 20);
    assert!(psnr(&pivoted) > psnr(&plain) + 1.0, "{} → {}", psnr(&plain), psnr(&pivoted));
    let out = std::env::temp_dir().join(format!("unforge-cli-{}-pivot-on", std::process::id()));
    let codes = std::fs::read(out.join("latents.safetensors")).unwrap();
    let codes = unforge::inversion::LatentCodes::from_safetensors(&codes, "latents").unwrap();
    assert_eq!(codes.metadata["pivot_steps"], "20");
}

#[test]
fn bench_times_the_search_step_and_the_tuning_step_in_both_forms() {
    let (ok, stdout, err) = unforge(&["bench", "--size", "16", "--steps", "1", "--json"]);
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // Both forms of the modulated convolution, timed in the same run.
    for form in ["fused", "non_fused"] {
        for key in ["generator_forward_s", "forward_s", "generator_backward_s", "step_s", "tuning_step_s"] {
            assert!(line[form][key].as_f64().is_some_and(|t| t > 0.0 && t.is_finite()), "{form}.{key}: {line}");
        }
    }
    let (ok, _, err) = unforge(&["bench", "--size", "17"]);
    assert!(!ok && err.contains("not a power of two"), "{err}");
}

/// Half precision on the CPU backend: the same step's P(fake) and gradient as in f32, within
/// what f16's 11-bit significand allows (the probes compared by the CLI itself); and Adam,
/// which diverges in f16, refused there.
#[test]
fn half_precision_keeps_the_step_near_f32_and_refuses_adam() {
    let dir = tmp("half-precision");
    std::fs::create_dir_all(&dir).unwrap();
    let reference = dir.join("f32.json");
    let args = ["bench", "--size", "32", "--steps", "0"];
    let (ok, _, err) = unforge(&[&args[..], &["--gradient-out", reference.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let (ok, stdout, err) =
        unforge(&[&args[..], &["--precision", "f16", "--gradient-against", reference.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let number = |key: &str| -> f64 {
        let rest = &stdout[stdout.find(key).unwrap_or_else(|| panic!("{key} in {stdout}")) + key.len()..];
        rest.trim_start().split([' ', ',', ')', '%', '\n']).next().unwrap().parse().unwrap()
    };
    assert!(stdout.starts_with("f16 against"), "{stdout}");
    assert!(number("(|Δ|") < 0.01, "{stdout}");
    assert!(number("gradient cosine") > 0.99, "{stdout}");
    assert!(number("signs agreeing") > 90.0, "{stdout}");
    // ... and f16 did run: its rounding shows.
    assert!(number("relative error") > 1e-4, "{stdout}");
    // f32 against itself is exact, so the bounds above measure f16, not noise.
    let (ok, stdout, err) = unforge(&[&args[..], &["--gradient-against", reference.to_str().unwrap()]].concat());
    assert!(ok && stdout.contains("(|Δ| 0.00e0)") && stdout.contains("signs agreeing 100.00 %"), "{stdout}{err}");
    let (ok, _, err) = unforge(&[&args[..], &["--precision", "f8"]].concat());
    assert!(!ok && err.contains("precision `f8`: use f32 or f16"), "{err}");
    // Adam diverges in f16 (the README's measurements): tuning and the pivot are refused there.
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/synth-fake-1.png");
    for (flag, what) in [("--tune-steps", "pivotal tuning"), ("--pivot-steps", "the pivot's W+ refinement")] {
        let out = dir.join(flag.trim_start_matches('-'));
        let run = [
            "run",
            image,
            "--zoo",
            zoo,
            "--precision",
            "f16",
            flag,
            "2",
            "--steps",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        let (ok, _, err) = unforge(&run);
        assert!(!ok && err.contains(&format!("{what} trains with Adam, which diverges in F16")), "{err}");
    }
    let (ok, _, err) = unforge(&args);
    assert!(!ok && err.contains("--steps 0 times nothing"), "{err}");
}

/// A folder of small face images made by `unforge samples`.
fn sample_folder(name: &str, count: usize) -> std::path::PathBuf {
    let dir = tmp(name);
    let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/samples/astronaut.png");
    let photo = if std::path::Path::new(photo).exists() {
        photo
    } else {
        concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png")
    };
    let (ok, _, err) = unforge(&[
        "samples",
        photo,
        "--face",
        "0,0,64",
        "--size",
        "64",
        "--synthetic",
        &count.to_string(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    dir
}

#[test]
fn eval_writes_tables_and_resumes() {
    let data = sample_folder("eval-data", 2);
    // Only the fakes are attacked when labels say which they are.
    std::fs::write(
        data.join("labels.json"),
        r#"{"synthetic-1.png": "fake", "synthetic-2.png": "fake", "photo-face.png": "real"}"#,
    )
    .unwrap();
    let out = tmp("eval-out");
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let args = [
        "eval",
        data.to_str().unwrap(),
        "--zoo",
        zoo,
        "--victims",
        "xception,efficientnet",
        "--attacks",
        "latent,fgsm,pgd",
        "--steps",
        "2",
        "--alpha",
        "0.02",
        "--pixel-steps",
        "2",
        "--level-ablation",
        "--alphas",
        "0.02,0.04",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = unforge(&args);
    assert!(ok, "{err}");
    // 2 images × 2 victims × (latent, fgsm, pgd, S, M, D, α 0.04).
    assert!(err.contains("28 runs, 0 resumed"), "{err}");
    assert!(err.contains("ETA"), "no progress line: {err}");
    assert!(
        stdout.contains("Tab. 1")
            && stdout.contains("Tab. 2/3")
            && stdout.contains("Tab. 4")
            && stdout.contains("Tab. 5"),
        "{stdout}"
    );
    for f in ["tables.md", "tables.json", "plan.json", "tab-2-3-transfer.csv", "tab-4-level-ablation.csv"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let records = std::fs::read_dir(out.join("records/xception/latent")).unwrap().count();
    assert_eq!(records, 2, "one record per fake image");
    let tables: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("tables.json")).unwrap()).unwrap();
    // The zoo's own two tables (the data has a real image), then the paper's.
    assert_eq!(tables[0]["name"], "Detectors before the search");
    let transfer =
        &tables.as_array().unwrap().iter().find(|t| t["name"].as_str().unwrap().contains("2/3")).unwrap()["rows"];
    assert_eq!(transfer.as_array().unwrap().len(), 6, "{transfer}");
    // A re-run does nothing new; a removed record is the only one redone.
    std::fs::remove_file(out.join("records/efficientnet/pgd/synthetic-2.json")).unwrap();
    let (ok, stdout2, err) = unforge(&args);
    assert!(ok, "{err}");
    assert!(err.contains("1 runs, 27 resumed"), "{err}");
    // Same seed, same bits: the redone PGD run (random start included) reproduces the table.
    assert_eq!(stdout, stdout2, "resumed tables differ");
    // Other settings under the same names would resume records made with these: refused.
    let mut tuned = args.to_vec();
    tuned.extend(["--tune-steps", "2"]);
    let (ok, _, err) = unforge(&tuned);
    assert!(!ok && err.contains("`latent` was run there with other settings"), "{err}");
}

#[test]
fn eval_scores_the_zoo_from_the_inversions_its_searches_tune() {
    let data = sample_folder("eval-shared", 2);
    std::fs::write(
        data.join("labels.json"),
        r#"{"synthetic-1.png": "fake", "synthetic-2.png": "fake", "photo-face.png": "real"}"#,
    )
    .unwrap();
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let scores = |attack: &str, name: &str| {
        let out = tmp(name);
        let args = [
            "eval",
            data.to_str().unwrap(),
            "--zoo",
            zoo,
            "--victims",
            "xception",
            "--attacks",
            attack,
            "--steps",
            "1",
            "--pixel-steps",
            "1",
            "--tune-steps",
            "3",
            "--limit",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        let (ok, _, err) = unforge(&args);
        assert!(ok, "{err}");
        let shared = if attack == "latent" { 1 } else { 0 };
        assert!(
            err.contains(&format!("zoo scores: {shared} of 3 labelled images scored before the searches ended")),
            "{err}"
        );
        assert!(
            !out.join("zoo-scores.partial.json").exists(),
            "the partial scores are gone once the whole ones are saved"
        );
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("zoo-scores.json")).unwrap()).unwrap();
        saved["scores"].clone()
    };
    // The latent search tunes synthetic-1 once for itself and its score; a pixel attack tunes
    // nothing, so every image is scored afterwards. The same scores either way.
    let (shared, alone) = (scores("latent", "eval-shared-latent"), scores("pgd", "eval-shared-pgd"));
    assert_eq!(shared["images"], 3);
    assert_eq!(shared["pivotal_tuning"]["steps"], 3);
    assert_eq!(shared, alone);
}

#[test]
fn an_interrupted_eval_leaves_whole_records_and_resumes() {
    let data = sample_folder("eval-kill", 3);
    // Labelled: the fakes are searched, and the zoo is scored on all four as the run goes.
    std::fs::write(data.join("labels.json"), r#"{"synthetic-1.png": "fake", "synthetic-2.png": "fake", "synthetic-3.png": "fake", "photo-face.png": "real"}"#).unwrap();
    let out = tmp("eval-kill-out");
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let args = [
        "eval",
        data.to_str().unwrap(),
        "--zoo",
        zoo,
        "--victims",
        "xception,efficientnet",
        "--attacks",
        "latent,pgd",
        "--steps",
        "3",
        "--alpha",
        "0.02",
        "--limit",
        "4",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_unforge"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stop it hard (as a Ctrl-C or a crash would) once the first records exist.
    let count =
        || walk(&out.join("records")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count();
    let started = std::time::Instant::now();
    while count() < 2 && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = count();
    assert!((2..12).contains(&done), "{done} records before the stop");
    // The zoo's scores of the images searched so far survive the stop too.
    assert!(out.join("zoo-scores.partial.json").exists() && !out.join("zoo-scores.json").exists());
    for path in walk(&out.join("records")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{} is not whole", path.display());
    }
    let tables: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("tables.json")).unwrap()).unwrap();
    assert!(tables.is_array(), "the tables are whole");
    let (ok, _, err) = unforge(&args);
    assert!(ok, "{err}");
    // 3 fakes × 2 victims × 2 attacks.
    assert!(err.contains(&format!("{} runs, {done} resumed", 12 - done)), "{err}");
    assert!(!err.contains("(0 from an earlier run"), "{err}");
    assert!(out.join("zoo-scores.json").exists() && !out.join("zoo-scores.partial.json").exists());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn synth_writes_a_world_that_eval_scores_against_its_masks() {
    let data = tmp("synth-world");
    let (ok, stdout, err) = unforge(&[
        "synth",
        "--split",
        "validation",
        "--count",
        "4",
        "--start",
        "2",
        "--size",
        "64",
        "--contact-sheet",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("wrote 4 validation images"), "{stdout}");
    let labels: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels["validation-000002.png"], "real");
    assert_eq!(labels["validation-000003.png"], "fake");
    let samples: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("samples.json")).unwrap()).unwrap();
    assert_eq!(samples[1]["forgery"], "asymmetric_eyes");
    assert!(samples[1]["altered_pixels"].as_u64().unwrap() > 0);
    for f in ["validation-000005.png", "masks/validation-000005.png", "contact-sheet.png"] {
        assert!(std::fs::read(data.join(f)).unwrap().starts_with(b"\x89PNG"), "{f}");
    }
    let world: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("world.json")).unwrap()).unwrap();
    assert_eq!(world["forgeries"], "visible", "the default zoo's world by default");
    // The same faces with the first, subtle forgeries: the reals alike, the fakes not.
    let subtle = tmp("synth-world-subtle");
    let args = ["synth", "--split", "validation", "--count", "2", "--start", "2", "--size", "64", "--forgeries"];
    let (ok, _, err) = unforge(&[&args[..], &["subtle", "--out", subtle.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let read = |dir: &std::path::Path, f: &str| std::fs::read(dir.join(f)).unwrap();
    assert_eq!(read(&subtle, "validation-000002.png"), read(&data, "validation-000002.png"));
    assert_ne!(read(&subtle, "validation-000003.png"), read(&data, "validation-000003.png"));
    let world: serde_json::Value = serde_json::from_slice(&read(&subtle, "world.json")).unwrap();
    assert_eq!((world["forgeries"].as_str(), world["strengths"]["eye_size"][0].as_f64()), (Some("subtle"), Some(1.25)));
    let (ok, _, err) = unforge(&[&args[..], &["loud", "--out", subtle.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("unknown forgery strength `loud`"), "{err}");
    let out = tmp("synth-world-eval");
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let (ok, stdout, err) = unforge(&[
        "eval",
        data.to_str().unwrap(),
        "--zoo",
        zoo,
        "--victims",
        "xception,efficientnet",
        "--attacks",
        "latent,fgsm",
        "--steps",
        "2",
        "--alpha",
        "0.02",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("8 runs"), "2 fakes × 2 victims × 2 attacks: {err}");
    assert!(stdout.contains("### Localisation") && out.join("localisation.csv").exists(), "{stdout}");
    // Real and fake images together: the zoo's own scores on them come first.
    assert!(stdout.starts_with("### Detectors before the search") && stdout.contains("### Inversion"), "{stdout}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("zoo-scores.json")).unwrap()).unwrap();
    let scores: unforge::eval::ZooScores = serde_json::from_value(saved["scores"].clone()).unwrap();
    assert_eq!((scores.images, scores.fakes), (4, 2));
    assert!(scores.detectors.values().all(|d| d.p_fake.len() == 4 && d.auc.is_some_and(|a| (0.0..=1.0).contains(&a))));
    // After inversion: reals called fake and the AUC on the reconstructions, beside the fakes still detected.
    let unit = |v: Option<f64>| v.is_some_and(|v| (0.0..=1.0).contains(&v));
    assert!(
        scores.detectors.values().all(|d| unit(d.flagged_reconstructed_reals) && unit(d.reconstruction_auc)),
        "{:?}",
        scores.detectors
    );
    assert!(stdout.contains("| reals called fake after inversion % | AUC after inversion |"), "{stdout}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("records/efficientnet/latent/validation-000003.json")).unwrap())
            .unwrap();
    let auroc = record["localisation"]["change_auroc"].as_f64().expect("a change AUROC");
    assert!((0.0..=1.0).contains(&auroc));
    for (args, needle) in [
        (&["synth", "--split", "dev"][..], "unknown split `dev`"),
        (&["synth", "--size", "30"][..], "--size 30"),
        (&["synth", "--count", "0"][..], "--count"),
    ] {
        let (ok, _, err) = unforge(args);
        assert!(!ok && err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn train_writes_a_zoo_that_loads_and_reports_its_scores() {
    let out = tmp("trained");
    let args = [
        "train",
        "--size",
        "32",
        "--inverter-steps",
        "3",
        "--inverter-batch",
        "2",
        "--detector-steps",
        "3",
        "--detector-batch",
        "4",
        "--identity-steps",
        "3",
        "--identity-batch",
        "3",
        "--test-images",
        "6",
        "--checkpoint-every",
        "2",
        "--recommended-tune-steps",
        "3",
        "--forgeries",
        "subtle",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = unforge(&args);
    assert!(ok, "{err}");
    assert!(err.contains("ETA"), "no progress: {err}");
    assert!(stdout.contains("### Detectors before the search") && stdout.contains("### Inversion"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train-report.json")).unwrap()).unwrap();
    let scores = &report["test"];
    assert_eq!(scores["images"], 6);
    for d in ["xception", "efficientnet", "resnet"] {
        let auc = scores["detectors"][d]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{d}: {auc}");
    }
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["detectors"]["resnet"]["p_fake"].as_array().unwrap().len(), 6);
    assert_eq!(report["inverter"]["losses"].as_array().unwrap().len(), 3);
    assert_eq!(report["xception"]["losses"].as_array().unwrap().len(), 3);
    assert_eq!(report["arcface"]["losses"].as_array().unwrap().len(), 3);
    // Scored on `--test-images` people, with the network as the zoo ships it.
    assert_eq!(report["arcface"]["test"]["people"], 6);
    let auc = report["arcface"]["test"]["verification_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc) && stdout.contains("### Identity network"), "{auc} {stdout}");
    // The trained zoo is an ordinary zoo, with an identity network and no perceptual one.
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("zoo.json")).unwrap()).unwrap();
    let roles: Vec<&str> =
        manifest["networks"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert!(roles.contains(&"identity") && !roles.contains(&"perceptual"), "{roles:?}");
    // It says which world's forgeries it learned (here not the default), strengths and all.
    assert_eq!(manifest["domain"]["forgeries"]["eye_size"][0].as_f64(), Some(1.25), "{manifest}");
    assert!(manifest["domain"]["trained_on"].as_str().unwrap().contains("subtle forgeries"), "{manifest}");
    // It recommends the pivotal tuning its searches need, and `run` follows it.
    assert_eq!(manifest["pivotal_tuning"]["steps"], 3);
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/synth-fake-1.png");
    let run_out = tmp("trained-run");
    let (ok, _, err) =
        unforge(&["run", sample, "--zoo", out.to_str().unwrap(), "--steps", "2", "--out", run_out.to_str().unwrap()]);
    assert!(ok && err.contains("pivotal tuning    3/3"), "{err}");
    let (ok, _, err) = unforge(&["train", "--size", "48", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("--size 48"), "{err}");
    // A bad detector flag is refused at once, before the inverter trains.
    let fresh = tmp("train-bad-flag");
    let started = std::time::Instant::now();
    let (ok, _, err) = unforge(&["train", "--detector-batch", "3", "--out", fresh.to_str().unwrap()]);
    assert!(!ok && err.contains("even batch") && !err.contains("inverter step"), "{err}");
    assert!(started.elapsed().as_secs() < 20, "refused only after {:?}", started.elapsed());
    // The checkpoints are never overwritten by a new run; `--resume` takes every finished
    // stage as it is (same weights, nothing trained again).
    let (ok, _, err) = unforge(&args);
    assert!(!ok && err.contains("--resume"), "{err}");
    let before = std::fs::read(out.join("resnet.safetensors")).unwrap();
    let (ok, stdout2, err) = unforge(&[&args[..], &["--resume"]].concat());
    assert!(ok, "{err}");
    assert_eq!(err.matches("finished in an earlier run").count(), 5, "{err}");
    assert_eq!(std::fs::read(out.join("resnet.safetensors")).unwrap(), before);
    assert_eq!(stdout2, stdout, "the same zoo scores the same");
    // A checkpoint made with other settings is refused, naming them.
    let mut other = args.to_vec();
    other[4] = "5";
    let (ok, _, err) = unforge(&[&other[..], &["--resume"]].concat());
    assert!(!ok && err.contains("inverter.json") && err.contains("settings"), "{err}");
    // One detector trained alone is the one trained beside the others, and the zoo holds it only.
    let alone = tmp("trained-resnet");
    let (ok, _, err) =
        unforge(&[&args[..args.len() - 1], &[alone.to_str().unwrap(), "--detectors", "resnet"]].concat());
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(alone.join("resnet.safetensors")).unwrap(), before);
    assert!(!alone.join("xception.safetensors").exists());
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(alone.join("zoo.json")).unwrap()).unwrap();
    let detectors: Vec<&str> = manifest["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "detector")
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(detectors, ["resnet"]);
    let (ok, _, err) = unforge(&["train", "--detectors", "resnet,vgg", "--out", tmp("train-vgg").to_str().unwrap()]);
    assert!(!ok && err.contains("no detector `vgg`") && err.contains("xception, efficientnet, resnet"), "{err}");
}

#[test]
fn train_fits_a_wider_encoder_to_a_zoos_frozen_generator() {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let out = tmp("train-encoder");
    let (ok, _, err) = unforge(&[
        "train",
        "--inverter-from",
        models,
        "--encoder-width",
        "2",
        "--encoder-steps",
        "2",
        "--inverter-batch",
        "2",
        "--delta-weight",
        "0.05",
        "--detectors",
        "resnet",
        "--detector-steps",
        "1",
        "--detector-batch",
        "2",
        "--reconstructed-share",
        "0",
        "--identity-steps",
        "0",
        "--test-images",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("encoder step     2/2") && err.contains(" dB)") && !err.contains("inverter step"), "{err}");
    let file = |dir: &std::path::Path, name: &str| {
        unforge::weights::TensorFile::from_safetensors(&std::fs::read(dir.join(name)).unwrap(), name).unwrap()
    };
    let models_dir = std::path::Path::new(models);
    assert_eq!(file(&out, "generator.safetensors"), file(models_dir, "generator.safetensors"), "frozen");
    // The stem of the new encoder is twice as wide as the given zoo's.
    let stem =
        |dir: &std::path::Path| file(dir, "encoder.safetensors").tensors["encoder.input_layer.0.weight"].shape.clone();
    assert_eq!(stem(&out)[0], 2 * stem(models_dir)[0]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train-report.json")).unwrap()).unwrap();
    assert_eq!(report["encoder"]["width"], 2);
    assert_eq!(report["encoder"]["delta_weight"].as_f64().unwrap() as f32, 0.05);
    assert_eq!(report["encoder"]["generator"], "frozen");
    // The zoo loads with its wider encoder.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png");
    let run_out = tmp("train-encoder-run");
    let (ok, _, err) =
        unforge(&["run", sample, "--zoo", out.to_str().unwrap(), "--steps", "1", "--out", run_out.to_str().unwrap()]);
    assert!(ok, "{err}");
    for (extra, needle) in [
        (&["--encoder-width", "0"][..], "--encoder-width 0"),
        (&["--encoder-steps", "1", "--encoder-lr", "0"][..], "--encoder-lr must be positive"),
        (&["--delta-weight=-1"][..], "--delta-weight must be a number ≥ 0"),
        // Without an encoder to train, the given zoo's must fit.
        (&["--inverter-from", models, "--encoder-width", "2"][..], "is not this recipe's"),
    ] {
        let bad = tmp("train-encoder-bad");
        let (ok, _, err) = unforge(
            &[&["train", "--out", bad.to_str().unwrap(), "--detector-steps", "1", "--identity-steps", "0"][..], extra]
                .concat(),
        );
        assert!(!ok && err.contains(needle), "{extra:?}: {err}");
    }
}

#[test]
fn train_takes_an_inverter_from_a_zoo_and_shows_detectors_a_pool_of_refined_and_tuned_reconstructions() {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let out = tmp("train-pool");
    let args = [
        "train",
        "--size",
        "64",
        "--inverter-from",
        models,
        "--detectors",
        "resnet",
        "--detector-steps",
        "2",
        "--detector-batch",
        "4",
        "--detectors-from",
        models,
        "--pool-pairs",
        "1",
        "--pool-pivot-steps",
        "2",
        "--pool-tune-steps",
        "2",
        "--identity-steps",
        "0",
        "--test-images",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, _, err) = unforge(&args);
    assert!(ok, "{err}");
    assert!(
        err.contains("pool step     1/1  2 pivot and 2 tuning steps per image") && !err.contains("inverter step"),
        "{err}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train-report.json")).unwrap()).unwrap();
    assert_eq!(report["inverter"]["from"], models);
    let weights = |dir: &std::path::Path| {
        unforge::weights::TensorFile::from_safetensors(
            &std::fs::read(dir.join("generator.safetensors")).unwrap(),
            "generator",
        )
        .unwrap()
    };
    assert_eq!(weights(&out), weights(std::path::Path::new(models)), "the generator is the given zoo's");
    assert!(out.join("checkpoints/pool-000001.safetensors").exists());
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoints/resnet.json")).unwrap()).unwrap();
    assert_eq!(settings["settings"]["from"], models, "{settings}");
    // A resumed run takes the pool as it was made.
    let (ok, _, err) = unforge(&[&args[..], &["--resume"]].concat());
    assert!(ok && err.contains("pool: finished in an earlier run"), "{err}");
    for (extra, needle) in [
        (&["--size", "32", "--inverter-from", models][..], "is not this recipe's"),
        (&["--detectors-from", "/no/such/zoo"][..], "/no/such/zoo"),
        (&["--size", "32", "--detectors-from", models][..], "--detectors-from"),
        (
            &["--pool-pairs", "1", "--pool-tune-steps", "1", "--reconstructed-share", "0"][..],
            "--reconstructed-share 0 of 16 images is no whole pair",
        ),
        (&["--pool-pairs", "1", "--pool-tune-steps", "9000"][..], "--pool-tune-steps"),
        (&["--pool-pairs", "1", "--pool-pivot-steps", "9000"][..], "--pool-pivot-steps"),
        (&["--pool-pairs", "1"][..], "a pool needs --pool-pivot-steps or --pool-tune-steps"),
        (&["--pool-pairs", "1", "--pool-pivot-steps", "1", "--reconstructed-share", "0.01"][..], "is no whole pair"),
    ] {
        let (ok, _, err) = unforge(
            &[
                &[
                    "train",
                    "--out",
                    tmp("train-pool-bad").to_str().unwrap(),
                    "--detector-steps",
                    "1",
                    "--identity-steps",
                    "0",
                ][..],
                extra,
            ]
            .concat(),
        );
        assert!(!ok && err.contains(needle), "{extra:?}: {err}");
    }
}

#[test]
fn an_interrupted_training_resumes_from_its_last_checkpoint() {
    let out = tmp("train-resume");
    let args = [
        "train",
        "--size",
        "32",
        "--inverter-steps",
        "2",
        "--inverter-batch",
        "2",
        "--detector-steps",
        "60",
        "--detector-batch",
        "2",
        "--identity-steps",
        "2",
        "--identity-batch",
        "2",
        "--test-images",
        "2",
        "--checkpoint-every",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_unforge"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let meta = out.join("checkpoints/xception.json");
    let started = std::time::Instant::now();
    while !meta.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let saved = state["next_step"].as_u64().unwrap();
    assert!(saved.is_multiple_of(5) && saved < 60, "stopped after step {saved}");
    let (ok, _, err) = unforge(&[&args[..], &["--resume"]].concat());
    assert!(ok, "{err}");
    assert!(
        err.contains("inverter: finished in an earlier run") && err.contains("xception: resuming at step"),
        "{err}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train-report.json")).unwrap()).unwrap();
    assert_eq!(report["xception"]["losses"].as_array().unwrap().len(), 60, "the loss log continues the saved one");
}

#[test]
fn eval_narrows_to_victims_and_images() {
    let data = sample_folder("eval-narrow", 2);
    // Labels with reals and fakes: without --searches-only the zoo would be scored on all three.
    std::fs::write(
        data.join("labels.json"),
        r#"{"synthetic-1.png": "fake", "synthetic-2.png": "fake", "photo-face.png": "real"}"#,
    )
    .unwrap();
    let out = tmp("eval-narrow-out");
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let args = [
        "eval",
        data.to_str().unwrap(),
        "--zoo",
        zoo,
        "--victims",
        "efficientnet",
        "--limit",
        "1",
        "--attacks",
        "ifgsm,mifgsm",
        "--eps",
        "4",
        "--pixel-alpha",
        "1",
        "--pixel-steps",
        "3",
        "--mu",
        "0.5",
        "--id-threshold",
        "0.9",
        "--searches-only",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = unforge(&args);
    assert!(ok, "{err}");
    assert!(err.contains("2 runs, 0 resumed"), "{err}");
    assert!(!err.contains("scoring the zoo") && !out.join("zoo-scores.json").exists(), "{err}");
    assert!(!out.join("zoo-scores.partial.json").exists());
    assert!(!out.join("records/xception").exists());
    assert!(stdout.contains("share ≥ 0.9"), "{stdout}");
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan[0]["attack"]["eps"], 4.0);
    assert_eq!(plan[1]["attack"]["method"]["mu"], 0.5);
    assert_eq!(plan.as_array().unwrap().len(), 2, "no latent run was asked for: {plan}");
}

#[test]
fn eval_errors_name_the_problem() {
    let data = sample_folder("eval-bad", 1);
    let d = data.to_str().unwrap();
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let empty = tmp("eval-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let labelled = sample_folder("eval-labels", 1);
    std::fs::write(labelled.join("labels.json"), r#"{"synthetic-1.png": "maybe"}"#).unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["eval", d, "--zoo", zoo, "--attacks", "latent,cw"], "unknown pixel attack `cw`"),
        (&["eval", d, "--zoo", zoo, "--victims", "nope"], "no detector named `nope`"),
        (&["eval", d, "--zoo", zoo, "--preset", "slow"], "unknown preset `slow`"),
        (&["eval", d, "--zoo", zoo, "--eps", "0"], "eps"),
        (&["eval", empty.to_str().unwrap(), "--zoo", zoo], "no PNG images"),
        (&["eval", labelled.to_str().unwrap(), "--zoo", zoo], "labelled `maybe`"),
        (&["eval", d, "--zoo", zoo, "--backend", "tpu"], "--backend `tpu`"),
        (&["eval", d, "--zoo", zoo, "--rows", "0,1"], "--rows: eval's experiments move levels"),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = unforge(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // Without the wgpu feature the GPU backend is an error that says how to get it.
    #[cfg(not(feature = "wgpu"))]
    {
        let (ok, _, err) = unforge(&["eval", d, "--zoo", zoo, "--backend", "wgpu"]);
        assert!(!ok && err.contains("--features wgpu"), "{err}");
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png");
    let not_png = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cases: [(&[&str], &str); 15] = [
        (&["run", sample, "--zoo", zoo, "--cam-class", "5"], "CAM class 5 is outside the detector's 2 classes"),
        (&["run", sample, "--zoo", zoo, "--crop", "0,0,999"], "the square 999×999 at (0, 0) is not inside"),
        (&["run", sample, "--zoo", zoo, "--crop", "18446744073709551615,0,2"], "is not inside"),
        (&["run", sample, "--zoo", zoo, "--cam-layer", "block99"], "no layer `block99`"),
        (&["run", sample, "--zoo", zoo, "--tune-steps", "9000"], "pivotal tuning takes at most 5000 steps"),
        (
            &["run", sample, "--zoo", zoo, "--tune-steps", "5", "--tune-lr", "0"],
            "pivotal tuning learning rate must be positive",
        ),
        (&["run", sample, "--zoo", zoo, "--rows", "0,999"], "row 999 is outside W+"),
        (&["run", sample, "--zoo", zoo, "--cam", "saliency"], "cam `saliency`: use grad_cam"),
        (&["run", sample, "--zoo", zoo, "--method", "xgsm"], "unknown method `xgsm`"),
        (&["run", sample, "--zoo", zoo, "--loss", "hinge"], "unknown loss `hinge`"),
        (&["run", "/no/such/image.png", "--zoo", zoo], "/no/such/image.png"),
        (&["run", not_png, "--zoo", zoo], "not a PNG"),
        (&["run", sample, "--zoo", "/no/such/zoo"], "zoo.json"),
        (&["run", sample, "--zoo", zoo, "--levels", "Q"], "unknown level"),
        (&["run", sample, "--zoo", zoo, "--detector", "nope"], "no detector named `nope`"),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = unforge(args);
        assert!(!ok, "{args:?} succeeded");
        // Progress lines (the zoo loaded) may come first; the error is the last line, and one.
        let error = err.trim().lines().last().unwrap_or_default();
        assert!(error.starts_with("error: ") && error.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, _, err) = unforge(&["run", sample, "--zoo", zoo, "--alpha=-1"]);
    assert!(!ok && err.contains("alpha"), "{err}");
    let (ok, _, err) = unforge(&["run", sample, "--zoo", zoo, "--crop", "1,2"]);
    assert!(!ok && err.contains("crop `1,2`: use x,y,side"), "{err}");
}

#[test]
fn eval_shards_fill_one_folder_and_add_up_to_the_tables_of_one_run() {
    let data = tmp("shard-world");
    let (ok, _, err) =
        unforge(&["synth", "--split", "validation", "--count", "6", "--size", "64", "--out", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-seeded");
    let eval = |extra: &[&str], out: &std::path::Path| -> Vec<String> {
        let common =
            ["eval", data.to_str().unwrap(), "--zoo", zoo, "--victims", "xception", "--attacks", "latent,fgsm"];
        let settings = ["--steps", "2", "--alpha", "0.02", "--tune-steps", "1", "--out", out.to_str().unwrap()];
        [&common[..], &settings[..], extra].concat().iter().map(|s| s.to_string()).collect()
    };
    let single = tmp("shard-single");
    let (ok, whole, err) = unforge(&eval(&[], &single).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    // Three workers of a job array, at once, into one folder.
    let shared = tmp("shard-shared");
    let started: Vec<_> = (1..=3)
        .map(|k| {
            let args = eval(&["--shard", &format!("{k}/3")], &shared);
            let piped = || std::process::Stdio::piped();
            Command::new(env!("CARGO_BIN_EXE_unforge"))
                .args(&args)
                .stdout(piped())
                .stderr(piped())
                .spawn()
                .expect("runs")
        })
        .collect();
    let workers: Vec<_> = started.into_iter().map(|w| w.wait_with_output().expect("ends")).collect();
    for (k, w) in workers.iter().enumerate() {
        assert!(w.status.success(), "shard {}: {}", k + 1, String::from_utf8_lossy(&w.stderr));
    }
    assert!(!shared.join("tables.md").exists(), "a shard writes records, not the run's tables");
    let records = |dir: &std::path::Path| std::fs::read_dir(dir.join("records/xception/latent")).unwrap().count();
    assert_eq!(records(&shared), records(&single));
    let (ok, joined, err) = unforge(&eval(&["--tables-only"], &shared).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(joined.starts_with("### Detectors before the search"), "the shards' zoo scores are joined: {joined}");
    assert_eq!(joined, whole, "the shards' tables are the single run's");
    assert_eq!(std::fs::read(shared.join("tables.md")).unwrap(), std::fs::read(single.join("tables.md")).unwrap());
    for bad in ["0/3", "4/3", "x", "2"] {
        let (ok, _, err) =
            unforge(&eval(&["--shard", bad], &tmp("shard-bad")).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!ok && err.contains(&format!("--shard `{bad}`")), "{bad}: {err}");
    }
}

#[test]
fn finetune_tunes_the_generator_into_a_new_zoo_deterministically_and_resumes() {
    let data = tmp("finetune-data");
    std::fs::create_dir_all(&data).unwrap();
    for name in ["synth-fake-1.png", "synth-fake-2.png", "synth-real-1.png"] {
        std::fs::copy(format!("{}/www/samples/{name}", env!("CARGO_MANIFEST_DIR")), data.join(name)).unwrap();
    }
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let (out, twin) = (tmp("finetuned"), tmp("finetuned-twin"));
    let args = |out: &std::path::Path| {
        let d = data.to_str().unwrap().to_string();
        let o = out.to_str().unwrap().to_string();
        let rest =
            ["--steps", "6", "--batch", "2", "--lambda-lpips", "0", "--held-out", "1", "--checkpoint-every", "3"];
        [
            vec!["finetune".to_string(), d, "--zoo".into(), zoo.into(), "--out".into(), o],
            rest.map(String::from).to_vec(),
        ]
        .concat()
    };
    let run = |args: &[String]| unforge(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, stdout, err) = run(&args(&out));
    assert!(ok, "{err}");
    assert!(stdout.contains("on 1 held-out images") && stdout.contains("PSNR"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("finetune-report.json")).unwrap()).unwrap();
    let losses: Vec<f64> = report["losses"].as_array().unwrap().iter().map(|l| l["loss"].as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 6);
    // L2 + 0.1 · ID on the two training faces falls (the default zoo's reconstructions start far
    // from the faces' identities).
    assert!(losses[5] < losses[0], "the loss did not fall: {losses:?}");
    assert!(report["before"]["psnr_db"].as_f64().is_some() && report["after"]["id_similarity"].as_f64().is_some());
    // A zoo that loads, whose generator differs from the one it started from.
    let (m, files) = unforge::zoo::read_dir(&out).unwrap();
    assert!(m.description.contains("fine-tuned on"));
    let (m0, files0) = unforge::zoo::read_dir(std::path::Path::new(zoo)).unwrap();
    let dev = burn::tensor::Device::flex();
    let (tuned, original) =
        (unforge::zoo::Zoo::load(m, &files, &dev).unwrap(), unforge::zoo::Zoo::load(m0, &files0, &dev).unwrap());
    assert_ne!(tuned.generator_fingerprint, original.generator_fingerprint);
    // Seeded: the same run gives the same bits; a finished run is not run again.
    let (ok, _, err) = run(&args(&twin));
    assert!(ok, "{err}");
    let g = |dir: &std::path::Path| std::fs::read(dir.join("generator-finetuned.safetensors")).unwrap();
    assert_eq!(g(&out), g(&twin), "the same fine-tuning gave other weights");
    let (ok, _, err) = run(&[args(&out), vec!["--resume".into()]].concat());
    assert!(ok && err.contains("finished in an earlier run"), "{err}");
    let (ok, _, err) = run(&args(&out));
    assert!(!ok && err.contains("--resume"), "{err}");
    // Losses the zoo cannot compute, and a hold-out that leaves nothing, are refused by name.
    let mut no_lpips = args(&tmp("finetune-lpips"));
    no_lpips.retain(|a| a != "--lambda-lpips");
    no_lpips.retain(|a| a != "0");
    let (ok, _, err) = run(&no_lpips);
    assert!(!ok && err.contains("perceptual network") && err.contains("--lambda-lpips 0"), "{err}");
    let mut all_held = args(&tmp("finetune-held"));
    let at = all_held.iter().position(|a| a == "--held-out").unwrap();
    all_held[at + 1] = "3".into();
    let (ok, _, err) = run(&all_held);
    assert!(!ok && err.contains("none left to train on"), "{err}");
}

//! The default zoo (`models/`, trained on the synthetic world) is the one its model card
//! describes: loading it reproduces its `card.json`, the detectors' scores on the first 20
//! test-split images, and its identity network (shared with `models/tiny-seeded/`) tells the
//! test split's people apart as its training report says.

use burn::tensor::Device;
use unforge::eval::ZooScores;
use unforge::zoo::{Zoo, read_dir};

fn models() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[test]
fn the_committed_zoo_reproduces_its_cards_scores_on_20_test_images() {
    let card: ZooScores = serde_json::from_slice(&std::fs::read(models().join("card.json")).unwrap()).unwrap();
    assert_eq!(card.images, 20);
    let (manifest, files) = read_dir(&models()).unwrap();
    assert_eq!(manifest.name, "synthetic-trained");
    let size = manifest.generator().unwrap().input_size;
    let device = Device::flex();
    let forgeries = manifest.forgeries();
    let zoo = Zoo::load(manifest, &files, &device).unwrap();
    let scores = unforge::train::test_scores(&zoo, size, &forgeries, 20).unwrap();
    assert_eq!(scores.detectors.keys().collect::<Vec<_>>(), card.detectors.keys().collect::<Vec<_>>());
    for (name, ours) in &scores.detectors {
        let theirs = &card.detectors[name];
        assert_eq!(ours.p_fake.len(), theirs.p_fake.len(), "{name}");
        let worst = ours.p_fake.iter().zip(&theirs.p_fake).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{name}: P(fake) differs from the card by up to {worst}");
        assert_eq!((ours.auc, ours.accuracy), (theirs.auc, theirs.accuracy), "{name}");
        // Trained, not a coin: it ranks nearly every one of these fakes above these reals
        // (the card's 0.98 to 1.00; a seeded detector is near 0.5).
        assert!(ours.auc.unwrap() > 0.9, "{name}: AUC {:?} on the card's images", ours.auc);
    }
    assert!((scores.reconstruction_psnr_db - card.reconstruction_psnr_db).abs() < 1e-3);
    assert_eq!(scores.by_kind, card.by_kind);
}

#[test]
fn the_committed_zoos_fit_their_size_budget() {
    // The files git tracks: models/ also holds what the build makes (the converted face
    // detector, the full-size keyed zoo of the browser tests), which is never committed.
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z", "models"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git lists the committed files");
    assert!(listed.status.success(), "git ls-files: {}", String::from_utf8_lossy(&listed.stderr));
    let files: Vec<String> =
        listed.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into()).collect();
    assert!(files.iter().any(|f| f == "models/zoo.json"), "{files:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let total: u64 = files.iter().map(|f| root.join(f).metadata().unwrap().len()).sum();
    assert!(total <= 25 << 20, "models/ commits {total} bytes, more than 25 MB");
}

#[test]
fn the_committed_identity_network_tells_unseen_people_apart() {
    use unforge::train::identity::IdentityScores;
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models().join("train-report.json")).unwrap()).unwrap();
    let reported = report["arcface"]["test"]["verification_auc"].as_f64().unwrap();
    let (manifest, files) = read_dir(&models()).unwrap();
    // The seeded zoo carries the same network.
    assert_eq!(std::fs::read(models().join("tiny-seeded/arcface.safetensors")).unwrap(), files["arcface.safetensors"]);
    let size = manifest.generator().unwrap().input_size;
    let device = Device::flex();
    let zoo = Zoo::load(manifest, &files, &device).unwrap();
    let scores =
        IdentityScores::measure(zoo.identity.as_ref().expect("an identity network"), 20, size, &device).unwrap();
    // 200 people in the report; the first 20 of them here (the f16 file, the same people).
    assert!(reported > 0.99 && scores.verification_auc > 0.98, "reported {reported}, measured {scores:?}");
    assert!(scores.genuine_mean > 0.8 && scores.impostor_mean < 0.3, "{scores:?}");
}

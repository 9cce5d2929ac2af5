//! The CLI: a full run writes its outputs; bad input exits non-zero with a one-line error.

use std::process::Command;

fn unforge(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unforge")).args(args).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

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
    let (ok, stdout, err) = unforge(&["run", sample, "--zoo", zoo.to_str().unwrap(), "--steps", "3", "--alpha", "0.03", "--levels", "S,M", "--method", "mifgsm", "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("P(fake)"), "{stdout}");
    for f in ["input.png", "reconstruction.png", "counterfactual.png", "residual_signed.png", "residual_magnitude.png", "cam_reconstruction.png", "cam_counterfactual.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{f}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["result"]["history"].as_array().unwrap().len(), report["result"]["steps"].as_u64().unwrap() as usize);
    assert!(report["result"]["p_fake_counterfactual"].as_f64().is_some());
    let q = &report["result"]["quality"];
    assert!(q["psnr_db"].as_f64().is_some_and(|p| p > 0.0 && p.is_finite()), "{q}");
    assert!(q["tv_counterfactual"].as_f64().unwrap() > 0.0, "{q}");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/www/samples/photo-face.png");
    let not_png = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cases: [(&[&str], &str); 8] = [
        (&["run", sample, "--zoo", zoo, "--cam", "saliency"], "--cam `saliency`"),
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
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, _, err) = unforge(&["run", sample, "--zoo", zoo, "--alpha=-1"]);
    assert!(!ok && err.contains("alpha"), "{err}");
}

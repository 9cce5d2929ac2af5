//! Weight files and manifests: every bad input is an error that names the problem.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::error::Error;
use unforge::weights::{StoredPrecision, TensorFile};
use unforge::zoo::{Manifest, Zoo};

#[test]
fn safetensors_round_trip_keeps_names_and_values() {
    let (_, files) = tiny_files();
    let bytes = &files["generator.safetensors"];
    let parsed = TensorFile::from_safetensors(bytes, "g").unwrap();
    assert!(parsed.tensors.contains_key("convs.0.conv.modulation.weight"));
    assert!(parsed.tensors.contains_key("noises.noise_0"));
    assert_eq!(parsed.tensors["conv1.conv.weight"].shape, vec![1, 64, 64, 3, 3]);
    assert_eq!(&parsed.to_safetensors(StoredPrecision::F32), bytes);
    let half = TensorFile::from_safetensors(&parsed.to_safetensors(StoredPrecision::F16), "g16").unwrap();
    let (a, b) = (&parsed.tensors["style.1.weight"].data, &half.tensors["style.1.weight"].data);
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-3 * x.abs().max(1.0)));
}

#[test]
fn corrupt_and_truncated_files_are_errors() {
    let (manifest, files) = tiny_files();
    let good = files["xception.safetensors"].clone();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"this is not a tensor file at all".to_vec()),
        ("header length past the end", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
            b
        }),
        ("header not JSON", {
            let mut b = good.clone();
            b[8] = b'x';
            b
        }),
    ] {
        let mut files = files.clone();
        files.insert("xception.safetensors".into(), bytes);
        match Zoo::load(manifest.clone(), &files, &Device::flex()) {
            Err(Error::WeightFile { origin, .. }) => assert_eq!(origin, "xception.safetensors", "{what}"),
            other => panic!("{what}: expected a weight-file error, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn mismatched_weights_list_every_problem() {
    let (manifest, mut files) = tiny_files();
    let mut t = TensorFile::from_safetensors(&files["xception.safetensors"], "x").unwrap();
    t.tensors.remove("bn1.weight");
    t.tensors.remove("last_linear.bias");
    t.tensors.get_mut("conv1.weight").unwrap().shape = vec![1, 8 * 3 * 3 * 3];
    t.tensors.insert("extra.weight".into(), unforge::weights::HostTensor::new(vec![1], vec![0.0]));
    files.insert("xception.safetensors".into(), t.to_safetensors(StoredPrecision::F32));
    let err = Zoo::load(manifest, &files, &Device::flex()).unwrap_err();
    let Error::WeightMismatch { origin, problems } = &err else { panic!("{err}") };
    assert_eq!(origin, "xception.safetensors");
    let text = problems.join("\n");
    for needle in [
        "missing key `bn1.weight`",
        "missing key `last_linear.bias`",
        "key `conv1.weight`: shape",
        "unexpected key `extra.weight`",
    ] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
    assert_eq!(problems.len(), 4, "{text}");
}

#[test]
fn manifest_naming_a_missing_file_is_an_error() {
    let (manifest, mut files) = tiny_files();
    files.remove("encoder.safetensors");
    let err = Zoo::load(manifest, &files, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("encoder.safetensors") && err.contains("missing"), "{err}");
}

#[test]
fn inconsistent_manifests_are_rejected() {
    let (manifest, _) = tiny_files();
    let json = manifest.to_json();
    assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
    assert!(Manifest::from_json("{ not json").is_err());
    let wrong_rows = json.replacen("\"n_latent\": 8", "\"n_latent\": 9", 1);
    assert!(Manifest::from_json(&wrong_rows).unwrap_err().to_string().contains("W+ rows"));
    let escape = json.replace("xception.safetensors", "../../etc/passwd");
    assert!(Manifest::from_json(&escape).is_err());
    let mut no_detector = manifest.clone();
    no_detector.networks.retain(|n| n.role != unforge::zoo::Role::Detector);
    assert!(no_detector.validate().is_err());
}

#[test]
fn bad_images_are_errors() {
    use unforge::image::RgbaImage;
    assert!(RgbaImage::decode_png(b"GIF89a....", "x.gif").unwrap_err().to_string().contains("x.gif"));
    let png = test_image(16).encode_png();
    assert!(RgbaImage::decode_png(&png[..png.len() - 20], "cut.png").is_err());
    assert_eq!(RgbaImage::decode_png(&png, "ok.png").unwrap(), test_image(16));
    assert!(RgbaImage::new(4, 4, vec![0; 10]).is_err());
    assert!(RgbaImage::new(0, 4, vec![]).is_err());
}

#[test]
fn prefixes_select_one_network_of_a_checkpoint() {
    let (manifest, files) = tiny_files();
    // A DeepfakeBench-style file: every key under `module.backbone.`, plus an unrelated head.
    let t = TensorFile::from_safetensors(&files["xception.safetensors"], "x").unwrap();
    let mut wrapped = TensorFile::default();
    for (k, v) in &t.tensors {
        wrapped.tensors.insert(format!("module.backbone.{k}"), v.clone());
    }
    wrapped.tensors.insert("module.head.weight".into(), unforge::weights::HostTensor::new(vec![1], vec![0.0]));
    let mut files = files.clone();
    files.insert("xception.safetensors".into(), wrapped.to_safetensors(StoredPrecision::F32));
    let mut manifest = manifest.clone();
    let strict = Zoo::load(manifest.clone(), &files, &Device::flex()).unwrap_err().to_string();
    assert!(strict.contains("missing key `conv1.weight`"), "{strict}");
    manifest.networks.iter_mut().find(|n| n.name == "xception").unwrap().prefix = "backbone.".into();
    let zoo = Zoo::load(manifest, &files, &Device::flex()).unwrap();
    assert_eq!(
        zoo.detectors.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["xception", "efficientnet", "resnet"]
    );
    assert_eq!(
        t.clone().select_prefix("conv1."),
        TensorFile { tensors: [("weight".to_string(), t.tensors["conv1.weight"].clone())].into() }
    );
}

#[test]
fn metric_roles_are_optional_and_single() {
    let (manifest, _) = tiny_files();
    assert_eq!(manifest.optional(unforge::zoo::Role::Identity).unwrap(), None);
    let (with, files) = unforge::zoo_init::TinyZooSpec { metric_networks: true, ..tiny_spec() }.build().unwrap();
    let zoo = Zoo::load(with.clone(), &files, &Device::flex()).unwrap();
    assert!(zoo.identity.is_some() && zoo.perceptual.is_some());
    let mut twice = with.clone();
    let mut extra = twice.networks.iter().find(|n| n.name == "lpips").unwrap().clone();
    extra.name = "lpips-2".into();
    twice.networks.push(extra);
    let err = twice.validate().unwrap_err().to_string();
    assert!(err.contains("2 Perceptual networks"), "{err}");
    let mut same_name = with;
    same_name.networks[3].name = "xception".into();
    assert!(same_name.validate().unwrap_err().to_string().contains("two networks are named `xception`"));
}

#[test]
fn a_manifest_may_recommend_pivotal_tuning() {
    use unforge::inversion::PivotalTuning;
    let (manifest, _) = tiny_files();
    assert!(!manifest.to_json().contains("pivotal_tuning"), "absent unless set, so older manifests stay as they were");
    let tuned = unforge::zoo::Manifest {
        pivotal_tuning: Some(PivotalTuning { steps: 200, learning_rate: 2e-3 }),
        ..manifest.clone()
    };
    assert_eq!(unforge::zoo::Manifest::from_json(&tuned.to_json()).unwrap(), tuned);
    // A manifest may give the steps alone: the learning rate is then the default one.
    let mut steps_only: serde_json::Value = serde_json::from_str(&tuned.to_json()).unwrap();
    steps_only["pivotal_tuning"].as_object_mut().unwrap().remove("learning_rate");
    let read = unforge::zoo::Manifest::from_json(&steps_only.to_string()).unwrap();
    assert_eq!(read.pivotal_tuning, Some(PivotalTuning { steps: 200, learning_rate: PivotalTuning::LEARNING_RATE }));
    for (bad, needle) in [
        (PivotalTuning { steps: 6000, learning_rate: 2e-3 }, "at most 5000 steps"),
        (PivotalTuning { steps: 5, learning_rate: -1.0 }, "must be positive"),
    ] {
        let err = unforge::zoo::Manifest { pivotal_tuning: Some(bad), ..manifest.clone() }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pivotal_tuning") && err.contains(needle), "{err}");
    }
}

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
        pivotal_tuning: Some(PivotalTuning { steps: 200, learning_rate: 2e-3, ..PivotalTuning::off() }),
        ..manifest.clone()
    };
    assert_eq!(unforge::zoo::Manifest::from_json(&tuned.to_json()).unwrap(), tuned);
    // A manifest may give the steps alone: the learning rate is then the default one.
    let mut steps_only: serde_json::Value = serde_json::from_str(&tuned.to_json()).unwrap();
    steps_only["pivotal_tuning"].as_object_mut().unwrap().remove("learning_rate");
    let read = unforge::zoo::Manifest::from_json(&steps_only.to_string()).unwrap();
    assert_eq!(
        read.pivotal_tuning,
        Some(PivotalTuning { steps: 200, learning_rate: PivotalTuning::LEARNING_RATE, ..PivotalTuning::off() })
    );
    // A refined pivot is kept; settings without one write no `pivot`.
    let pivoted = unforge::zoo::Manifest {
        pivotal_tuning: Some(PivotalTuning::steps(0).with_pivot_steps(50)),
        ..manifest.clone()
    };
    assert_eq!(unforge::zoo::Manifest::from_json(&pivoted.to_json()).unwrap(), pivoted);
    assert!(pivoted.to_json().contains("\"pivot\"") && !tuned.to_json().contains("\"pivot\""));
    for (bad, needle) in [
        (PivotalTuning::steps(0).with_pivot_steps(9000), "W+ refinement takes at most 5000 steps"),
        (PivotalTuning { steps: 6000, learning_rate: 2e-3, ..PivotalTuning::off() }, "at most 5000 steps"),
        (PivotalTuning { steps: 5, learning_rate: -1.0, ..PivotalTuning::off() }, "must be positive"),
    ] {
        let err = unforge::zoo::Manifest { pivotal_tuning: Some(bad), ..manifest.clone() }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pivotal_tuning") && err.contains(needle), "{err}");
    }
}

/// A safetensors file's header as JSON and its data, to be changed and put back together.
fn split(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join(header_text: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header_text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header_text.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Runs `f`, turning a panic into a failure that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: panicked"))
}

#[test]
fn a_hundred_bad_weight_files_and_manifests_are_each_an_error_naming_the_file() {
    let (manifest, files) = tiny_files();
    let name = "xception.safetensors";
    let good = files[name].clone();
    let (header, data) = split(&good);
    let keys: Vec<String> = header.keys().filter(|k| *k != "__metadata__").cloned().collect();
    let mut rng = unforge::rng::SeededRng::new(19);
    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    let header_len = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for i in 0..20 {
        let at = rng.range(0, good.len() as u64 - 1) as usize;
        bad.push((format!("truncated at {at} (#{i})"), good[..at].to_vec()));
    }
    for i in 0..20 {
        let (at, bit) = (rng.range(8, header_len as u64) as usize, rng.range(0, 8));
        let mut b = good.clone();
        b[at] ^= 1 << bit;
        bad.push((format!("header byte {at} bit {bit} flipped (#{i})"), b));
    }
    for (i, value) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY].into_iter().cycle().take(10).enumerate() {
        let mut t = TensorFile::from_safetensors(&good, name).unwrap();
        let key = &keys[rng.range(0, keys.len() as u64) as usize];
        let tensor = t.tensors.get_mut(key).unwrap();
        let at = rng.range(0, tensor.data.len() as u64) as usize;
        tensor.data[at] = value;
        let precision = if i % 2 == 0 { StoredPrecision::F32 } else { StoredPrecision::F16 };
        bad.push((format!("{value} in `{key}` ({precision:?})"), t.to_safetensors(precision)));
    }
    for (i, dtype) in ["I64", "U8", "BOOL", "F64", "F8_E4M3", "I32", "F16", "Q4", "", "BF16"].into_iter().enumerate() {
        let mut h = header.clone();
        let key = &keys[(i * 7) % keys.len()];
        h[key.as_str()]["dtype"] = dtype.into();
        bad.push((format!("`{key}` as {dtype:?}"), join(&serde_json::to_string(&h).unwrap(), &data)));
    }
    for i in 0..10 {
        let mut t = TensorFile::from_safetensors(&good, name).unwrap();
        let key = keys[rng.range(0, keys.len() as u64) as usize].clone();
        let tensor = t.tensors.get_mut(&key).unwrap();
        let axis = i % tensor.shape.len();
        tensor.shape[axis] += 1;
        tensor.data = vec![0.5; tensor.shape.iter().product()];
        bad.push((format!("`{key}` one larger on axis {axis}"), t.to_safetensors(StoredPrecision::F32)));
    }
    for (i, key) in keys.iter().take(5).enumerate() {
        // The same key twice in the header, pointing at other bytes the second time.
        let text = serde_json::to_string(&header).unwrap();
        let entry = format!("\"{key}\":{}", serde_json::to_string(&header[key.as_str()]).unwrap());
        let other = &keys[(i + 1) % keys.len()];
        let twin = format!("\"{key}\":{}", serde_json::to_string(&header[other.as_str()]).unwrap());
        bad.push((format!("`{key}` twice"), join(&text.replacen(&entry, &format!("{entry},{twin}"), 1), &data)));
    }
    // A header that parses as JSON but does not describe the bytes.
    let (first, second) = (keys[0].as_str(), keys[1].as_str());
    let offsets = |k: &str| header[k]["data_offsets"].clone();
    let edits: [(&str, &str, serde_json::Value); 10] = [
        ("shape as text", "shape", "x".into()),
        ("offsets reversed", "data_offsets", serde_json::json!([offsets(first)[1], offsets(first)[0]])),
        ("offsets past the data", "data_offsets", serde_json::json!([0, data.len() + 4])),
        ("a zero in the shape", "shape", serde_json::json!([0])),
        ("a negative shape", "shape", serde_json::json!([-1])),
        ("another tensor's bytes", "data_offsets", offsets(second)),
        ("a huge shape", "shape", serde_json::json!([1u64 << 62, 4])),
        ("no dtype", "dtype", serde_json::Value::Null),
        ("dtype as a number", "dtype", 7.into()),
        ("offsets as text", "data_offsets", "0-4".into()),
    ];
    for (what, field, value) in edits {
        let mut h = header.clone();
        h[first][field] = value;
        bad.push((format!("`{first}`: {what}"), join(&serde_json::to_string(&h).unwrap(), &data)));
    }
    for length in [u64::MAX, 1 << 40, good.len() as u64, 0, 7] {
        let mut b = good.clone();
        b[..8].copy_from_slice(&length.to_le_bytes());
        bad.push((format!("header length {length}"), b));
    }
    let mut failures = Vec::new();
    let count = bad.len();
    for (what, bytes) in bad {
        let mut f = files.clone();
        f.insert(name.into(), bytes);
        match no_panic(&what, || Zoo::load(manifest.clone(), &f, &Device::flex())) {
            Ok(_) => failures.push(format!("{what}: loaded")),
            Err(e) if !e.to_string().contains(name) => failures.push(format!("{what}: `{e}` does not name the file")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {count} bad files:\n{}", failures.len(), failures.join("\n"));

    // Manifests: a file outside the folder, broken JSON, networks that do not fit.
    let json = manifest.to_json();
    let outside = ["../x.safetensors", "/etc/passwd", "a/../../b.safetensors", "..", ""];
    let mut manifests: Vec<(String, String)> =
        outside.iter().map(|f| (format!("file {f:?}"), json.replace(name, f))).collect();
    manifests.extend([
        ("truncated".into(), json[..json.len() / 2].to_string()),
        ("no networks".into(), json.replacen("\"networks\"", "\"nets\"", 1)),
        (
            "unknown architecture".into(),
            json.replacen("\"architecture\": \"xception\"", "\"architecture\": \"vit\"", 1),
        ),
        ("rows".into(), json.replacen("\"n_latent\": 8", "\"n_latent\": 80", 1)),
        ("negative size".into(), json.replacen("\"input_size\": 32", "\"input_size\": -32", 1)),
    ]);
    assert_eq!(count + manifests.len(), 100, "a hundred bad inputs in all");
    for (what, text) in manifests {
        let result = no_panic(&what, || Manifest::from_json(&text));
        let err = result.err().unwrap_or_else(|| panic!("manifest with {what}: accepted"));
        assert!(err.to_string().starts_with("model manifest"), "{what}: {err}");
    }
}

#[test]
fn bad_pytorch_checkpoints_are_errors_not_panics() {
    let good =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/convert/stylegan2_rosinality.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("unforge-bad-pt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = unforge::rng::SeededRng::new(21);
    let mut failures = Vec::new();
    for i in 0..30 {
        let mut b = good.clone();
        let what = if i < 15 {
            let at = rng.range(4, good.len() as u64) as usize;
            b.truncate(at);
            format!("truncated at {at}")
        } else {
            // Flips anywhere: the zip directory, the pickle, the tensors' bytes.
            let at = rng.range(4, good.len() as u64) as usize;
            b[at] ^= 1 << rng.range(0, 8);
            format!("byte {at} flipped")
        };
        let path = dir.join(format!("bad-{i}.pt"));
        std::fs::write(&path, &b).unwrap();
        let result = no_panic(&what, || {
            unforge::convert::read_checkpoint(&path).and_then(|all| {
                let opts = unforge::convert::ConvertOptions {
                    role: unforge::zoo::Role::Generator,
                    name: "g".into(),
                    file: "g.safetensors".into(),
                    input_size: None,
                    normalization: unforge::networks::Normalization::MinusOneOne,
                    encoder_variant: Default::default(),
                };
                unforge::convert::convert(all, &opts)
            })
        });
        // A flip inside a tensor's bytes leaves a valid checkpoint with other values; anything
        // refused names the file.
        if let Err(e) = result {
            let text = e.to_string();
            if !(text.contains("bad-") || text.contains("g.safetensors") || text.contains("generator")) {
                failures.push(format!("{what}: `{text}` does not name the file"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

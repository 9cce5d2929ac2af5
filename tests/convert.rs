//! `unforge convert`: original PyTorch containers in, strict safetensors and manifest entries
//! out; legacy pickles are refused with the command that re-saves them.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert").join(name)
}

fn unforge(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unforge")).args(args).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn converted_zoo_loads_and_matches_the_original_tensors() {
    let dir = std::env::temp_dir().join(format!("unforge-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Start from the seeded zoo's manifest, then replace every network by its conversion.
    let zoo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tiny-seeded");
    std::fs::copy(zoo.join("zoo.json"), dir.join("zoo.json")).unwrap();
    // The other detectors and the identity network are not converted here; they come along as
    // they are.
    for file in ["efficientnet.safetensors", "resnet.safetensors", "arcface.safetensors"] {
        std::fs::copy(zoo.join(file), dir.join(file)).unwrap();
    }
    let manifest = dir.join("zoo.json");
    for (ckpt, role, out, name, extra) in [
        ("stylegan2_rosinality.pt", "generator", "g.safetensors", "stylegan2", vec![]),
        ("e4e.pt", "encoder", "e.safetensors", "e4e", vec!["--input-size", "64"]),
        ("xception_deepfakebench.pth", "detector", "x.safetensors", "xception", vec!["--input-size", "64", "--f16"]),
    ] {
        let (c, o, m) = (fixture(ckpt), dir.join(out), manifest.to_str().unwrap().to_string());
        let mut args = vec![
            "convert",
            c.to_str().unwrap(),
            "--role",
            role,
            "--out",
            o.to_str().unwrap(),
            "--name",
            name,
            "--manifest",
            &m,
        ];
        args.extend(extra);
        let (ok, stdout, err) = unforge(&args);
        assert!(ok, "{ckpt}: {err}");
        let entry: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(entry["role"], role);
    }
    let text = std::fs::read_to_string(&manifest).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let det = m["networks"].as_array().unwrap().iter().find(|n| n["role"] == "detector").unwrap();
    assert_eq!(det["config"]["layout"], "deepfake_bench");
    let generator = m["networks"].as_array().unwrap().iter().find(|n| n["role"] == "generator").unwrap();
    assert_eq!(generator["config"]["size"], 64);
    assert_eq!(generator["file"], "g.safetensors");
    // The converted zoo loads and produces the same reconstruction as the original zoo.
    let (m1, f1) = unforge::zoo::read_dir(&dir).unwrap();
    let (m0, f0) = unforge::zoo::read_dir(&zoo).unwrap();
    let dev = burn::tensor::Device::flex();
    let (z1, z0) = (unforge::zoo::Zoo::load(m1, &f1, &dev).unwrap(), unforge::zoo::Zoo::load(m0, &f0, &dev).unwrap());
    let img = unforge::image::RgbaImage::decode_png(
        &std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/samples/photo-face.png")).unwrap(),
        "x",
    )
    .unwrap();
    let a = z1.inverter().invert(&img, &dev).reconstruction.into_data().try_to_vec::<f32>().unwrap();
    let b = z0.inverter().invert(&img, &dev).reconstruction.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(a, b);
}

#[test]
fn legacy_and_unsuitable_checkpoints_are_clear_errors() {
    let out = std::env::temp_dir().join(format!("unforge-convert-bad-{}.safetensors", std::process::id()));
    let o = out.to_str().unwrap();
    let legacy = fixture("stylegan2_legacy.pt");
    let (ok, _, err) = unforge(&["convert", legacy.to_str().unwrap(), "--role", "generator", "--out", o]);
    assert!(!ok);
    assert!(err.contains("torch.save(torch.load(") && err.contains("stylegan2_legacy.pt"), "{err}");
    let xc = fixture("xception_deepfakebench.pth");
    let (ok, _, err) = unforge(&["convert", xc.to_str().unwrap(), "--role", "generator", "--out", o]);
    assert!(!ok && err.contains("no StyleGAN2 generator"), "{err}");
    let (ok, _, err) = unforge(&["convert", xc.to_str().unwrap(), "--role", "painter", "--out", o]);
    assert!(!ok && err.contains("--role"), "{err}");
    let (ok, _, err) = unforge(&["convert", "/no/such.pt", "--role", "detector", "--out", o]);
    assert!(!ok && err.contains("/no/such.pt"), "{err}");
    let e4e = fixture("e4e.pt");
    let (ok, _, err) = unforge(&[
        "convert",
        e4e.to_str().unwrap(),
        "--role",
        "encoder",
        "--encoder-variant",
        "pixel2style",
        "--out",
        o,
    ]);
    assert!(!ok && err.contains("--encoder-variant"), "{err}");
}

#[test]
fn psp_encoders_are_named_by_the_user() {
    let out = std::env::temp_dir().join(format!("unforge-convert-psp-{}.safetensors", std::process::id()));
    let e4e = fixture("e4e.pt");
    let (ok, stdout, err) = unforge(&[
        "convert",
        e4e.to_str().unwrap(),
        "--role",
        "encoder",
        "--encoder-variant",
        "psp",
        "--input-size",
        "64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let entry: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(entry["config"]["variant"], "gradual_style_encoder");
    assert_eq!(entry["config"]["n_latent"], 10);
}

#[test]
fn efficientnet_layouts_and_sizes_are_inferred() {
    use unforge::networks::efficientnet::{EfficientNet, EfficientNetConfig, EfficientNetLayout};
    use unforge::weights::{TensorFile, WeightSource};
    use unforge::zoo::{Architecture, Role};
    let dev = burn::tensor::Device::flex();
    for (cfg, prefix) in [
        (EfficientNetConfig::b4(EfficientNetLayout::DeepfakeBench), "module.backbone."),
        (EfficientNetConfig::b7(EfficientNetLayout::ArtifactEraserTimm), ""),
    ] {
        let source = WeightSource::keyed(1);
        drop(EfficientNet::new(&source.root(&dev), &cfg).unwrap());
        let tensors = source.finish().unwrap();
        let mut wrapped = TensorFile::default();
        for (k, v) in tensors.tensors {
            wrapped.tensors.insert(format!("{prefix}{k}"), v);
        }
        let opts = unforge::convert::ConvertOptions {
            role: Role::Detector,
            name: "det".into(),
            file: "det.safetensors".into(),
            input_size: None,
            normalization: unforge::networks::Normalization::MinusOneOne,
            encoder_variant: Default::default(),
        };
        let converted = unforge::convert::convert(wrapped, &opts).unwrap();
        assert_eq!(converted.entry.architecture, Architecture::Efficientnet(cfg));
        assert_eq!(converted.entry.input_size, 256);
    }
}

#[test]
fn torchvision_resnets_are_inferred_and_checked_strictly() {
    use unforge::networks::resnet::{Resnet, ResnetBlock, ResnetConfig};
    use unforge::weights::{TensorFile, WeightSource};
    use unforge::zoo::{Architecture, Role};
    let dev = burn::tensor::Device::flex();
    let opts = unforge::convert::ConvertOptions {
        role: Role::Detector,
        name: "resnet".into(),
        file: "resnet.safetensors".into(),
        input_size: None,
        normalization: unforge::networks::Normalization::ImageNet,
        encoder_variant: Default::default(),
    };
    let narrow_bottleneck =
        ResnetConfig { block: ResnetBlock::Bottleneck, layers: [1, 2, 1, 1], width: 8, num_classes: 2 };
    for (cfg, prefix) in [(ResnetConfig::resnet34(2), "backbone."), (narrow_bottleneck, "")] {
        let source = WeightSource::seeded(2);
        drop(Resnet::new(&source.root(&dev), &cfg).unwrap());
        let mut wrapped = TensorFile::default();
        for (k, v) in source.finish().unwrap().tensors {
            wrapped.tensors.insert(format!("{prefix}{k}"), v);
        }
        let converted = unforge::convert::convert(wrapped.clone(), &opts).unwrap();
        assert_eq!(converted.entry.architecture, Architecture::Resnet(cfg.clone()));
        assert_eq!(converted.entry.input_size, 256, "the default every detector gets (a zoo needs a power of two)");
        // A missing block's tensor is named in the error.
        wrapped.tensors.remove(&format!("{prefix}layer2.0.bn2.running_var"));
        let err = unforge::convert::convert(wrapped, &opts).err().expect("a missing tensor is refused").to_string();
        assert!(err.contains("layer2.0.bn2.running_var"), "{err}");
    }
}

#[test]
fn metric_networks_convert_with_their_configuration() {
    // The toy ArcFace and LPIPS of the seeded zoo carry the original key names, so their
    // safetensors are checkpoints like any other.
    let dir = std::env::temp_dir().join(format!("unforge-convert-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, _, err) = unforge(&["init-zoo", "--out", dir.to_str().unwrap(), "--metric-networks", "--f32"]);
    assert!(ok, "{err}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("zoo.json")).unwrap()).unwrap();
    for (file, role) in [("arcface.safetensors", "identity"), ("lpips.safetensors", "perceptual")] {
        let out = dir.join(format!("converted-{file}"));
        let (ok, stdout, err) =
            unforge(&["convert", dir.join(file).to_str().unwrap(), "--role", role, "--out", out.to_str().unwrap()]);
        assert!(ok, "{file}: {err}");
        let entry: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let original = manifest["networks"].as_array().unwrap().iter().find(|n| n["role"] == role).unwrap();
        assert_eq!(entry["architecture"], original["architecture"], "{file}");
        assert_eq!(entry["config"], original["config"], "{file}: configuration inferred from the tensors");
        assert_eq!(std::fs::read(&out).unwrap().len(), std::fs::read(dir.join(file)).unwrap().len(), "{file}");
    }
    // An identity checkpoint is not a perceptual one.
    let (ok, _, err) = unforge(&[
        "convert",
        dir.join("arcface.safetensors").to_str().unwrap(),
        "--role",
        "perceptual",
        "--out",
        dir.join("x.safetensors").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("no LPIPS"), "{err}");
}

//! `unforge convert`: original PyTorch containers in, strict safetensors and manifest entries
//! out; legacy pickles are refused with the command that re-saves them.

mod common;

use common::unforge;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert").join(name)
}

#[test]
fn converted_zoo_loads_and_matches_the_original_tensors() {
    let dir = std::env::temp_dir().join(format!("unforge-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Start from the seeded zoo's manifest, then replace every network by its conversion.
    let zoo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tiny-seeded");
    std::fs::copy(zoo.join("zoo.json"), dir.join("zoo.json")).unwrap();
    // A manifest's weight files sit beside it; the networks not converted here (two detectors
    // and the identity network) come along as they are.
    for entry in std::fs::read_dir(&zoo).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
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

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unforge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The folders `unforge zoo` left in `parent` whose name starts with `.{stem}.partial`.
fn partials(parent: &std::path::Path, stem: &str) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!(".{stem}.partial")))
        .collect()
}

/// A seeded generator of `size` px with rosinality's keys, as a checkpoint file.
fn generator_checkpoint(size: usize, dir: &std::path::Path) -> PathBuf {
    let spec = unforge::zoo_init::TinyZooSpec { size, ..Default::default() };
    let (_, files) = spec.build().unwrap();
    let path = dir.join(format!("stylegan2-{size}.safetensors"));
    std::fs::write(&path, &files["generator.safetensors"]).unwrap();
    path
}

#[test]
fn zoo_builds_a_whole_zoo_from_checkpoints_in_one_command() {
    let out = tmp_dir("zoo-built");
    let (e4e, xc) = (fixture("e4e.pt"), fixture("xception_deepfakebench.pth"));
    let detector = format!("xception={},size=64", xc.display());
    // The generator comes from the e4e file's decoder; the encoder's input side from its layers.
    let (ok, stdout, err) =
        unforge(&["zoo", "--out", out.to_str().unwrap(), "--encoder", e4e.to_str().unwrap(), "--detector", &detector]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 networks") && stdout.contains("W+ 10 rows") && stdout.contains("(f16)"), "{stdout}");
    assert!(err.contains("StyleGAN2 64 px, W+ 10 × 32") && err.contains("Encoder4Editing 64 px in"), "{err}");
    let (m, files) = unforge::zoo::read_dir(&out).unwrap();
    assert_eq!((m.n_latent, m.levels.clone()), (10, unforge::search::RowBands::thirds(10)));
    assert_eq!(m.domain.as_ref().map(|d| d.kind), Some(unforge::zoo::DomainKind::Photographs));
    // Its inversion is the seeded zoo's, whose networks the fixtures hold (f16 either way).
    let dev = burn::tensor::Device::flex();
    let built = unforge::zoo::Zoo::load(m, &files, &dev).unwrap();
    let (m0, f0) =
        unforge::zoo::read_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tiny-seeded")).unwrap();
    let seeded = unforge::zoo::Zoo::load(m0, &f0, &dev).unwrap();
    let img = unforge::image::RgbaImage::decode_png(
        &std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/samples/photo-face.png")).unwrap(),
        "x",
    )
    .unwrap();
    let w = |z: &unforge::zoo::Zoo| z.inverter().invert(&img, &dev).latent.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(w(&built), w(&seeded));
    // A second build into the same folder is refused without --force, and replaces it with.
    let args = ["zoo", "--out", out.to_str().unwrap(), "--encoder", e4e.to_str().unwrap(), "--detector", &detector];
    let (ok, _, err) = unforge(&args);
    assert!(!ok && err.contains("not empty") && err.contains("--force"), "{err}");
    let (ok, _, err) = unforge(&[&args[..], &["--force", "--f32", "--name", "ffhq-keyed"]].concat());
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(out.join("zoo.json")).unwrap().contains("\"ffhq-keyed\""));
    assert!(partials(out.parent().unwrap(), out.file_name().unwrap().to_str().unwrap()).is_empty());

    // In shards of 50 kB: the encoder is stored in pieces, the CLI streams them, and the W+
    // codes are the unsharded zoo's.
    let sharded = tmp_dir("zoo-sharded");
    let (ok, _, err) = unforge(&[
        "zoo",
        "--out",
        sharded.to_str().unwrap(),
        "--encoder",
        e4e.to_str().unwrap(),
        "--detector",
        &detector,
        "--f32",
        "--shard-mb",
        "0.05",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains(" shards)"), "{err}");
    let (m, _) = unforge::zoo::read_dir(&sharded).unwrap();
    let shards = &m.encoder().unwrap().shards;
    assert!(shards.len() >= 2 && shards.iter().all(|s| sharded.join(s).is_file()), "{shards:?}");
    assert!(!sharded.join("e4e.safetensors").exists(), "the whole file was written beside its shards");
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/samples/photo-face.png");
    let codes = |zoo: &std::path::Path| {
        let inverted = tmp_dir(&format!("inverted-{}", zoo.file_name().unwrap().to_str().unwrap()));
        let (ok, _, err) = unforge(&[
            "invert",
            photo.to_str().unwrap(),
            "--zoo",
            zoo.to_str().unwrap(),
            "--out",
            inverted.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let bytes = std::fs::read(inverted.join("photo-face.latents.safetensors")).unwrap();
        unforge::weights::TensorFile::from_safetensors(&bytes, "codes").unwrap()
    };
    assert_eq!(codes(&sharded), codes(&out));
    // A network joins a sharded zoo: its shards are the encoder's weight files.
    let (joined, manifest) = (sharded.join("xception-2.safetensors"), sharded.join("zoo.json"));
    let (ok, _, err) = unforge(&[
        "convert",
        xc.to_str().unwrap(),
        "--role",
        "detector",
        "--name",
        "xception-2",
        "--input-size",
        "64",
        "--out",
        joined.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(unforge::zoo::read_dir(&sharded).unwrap().0.detectors().count(), 2);
}

#[test]
fn zoo_refuses_what_does_not_fit_and_leaves_nothing_behind() {
    let scratch = tmp_dir("zoo-scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let big = generator_checkpoint(128, &scratch);
    let (e4e, xc) = (fixture("e4e.pt"), fixture("xception_deepfakebench.pth"));
    let (e, x, b) = (e4e.to_str().unwrap(), xc.to_str().unwrap(), big.to_str().unwrap());
    let out = tmp_dir("zoo-refused");
    let o = out.to_str().unwrap();
    let d64 = format!("xception={x},size=64");
    for (args, says) in [
        // A generator of 12 rows with the encoder of a 10-row one: both named with their numbers.
        (
            vec!["--generator", b, "--encoder", e, "--detector", &d64],
            vec!["encoder `e4e` predicts 10 W+ rows", "generator `stylegan2` (128 px) takes 12"],
        ),
        // A detector larger than the generator.
        (vec!["--encoder", e, "--detector", &format!("xception={x},size=128")], vec!["takes 128 px", "(64 px)"]),
        // A detector that does not divide the generator's side.
        (vec!["--encoder", e, "--detector", &format!("xception={x},size=48")], vec!["does not divide"]),
        // A file of the wrong role.
        (vec!["--encoder", x, "--generator", e, "--detector", &d64], vec!["as the encoder", "no e4e encoder"]),
        (vec!["--encoder", e, "--detector", &format!("xception={e}")], vec!["as the detector", "no detector"]),
        // A missing file is found before any conversion; a name is used once.
        (vec!["--encoder", e, "--detector", "xception=/no/such.pth"], vec!["/no/such.pth", "no such file"]),
        (vec!["--encoder", e, "--detector", &d64, "--detector", &d64], vec!["`xception` is taken"]),
        (vec!["--encoder", e, "--detector", &d64, "--domain", "paintings"], vec!["--domain `paintings`"]),
    ] {
        let (ok, _, err) = unforge(&[&["zoo", "--out", o][..], &args].concat());
        assert!(!ok, "{args:?} was accepted");
        for s in says {
            assert!(err.contains(s), "{args:?}: `{s}` not in: {err}");
        }
        assert!(!out.exists(), "{args:?}: the failed build left {}", out.display());
        assert!(partials(out.parent().unwrap(), out.file_name().unwrap().to_str().unwrap()).is_empty());
    }
}

#[test]
fn convert_joins_a_zoo_only_when_the_whole_is_consistent() {
    let dir = tmp_dir("convert-join");
    std::fs::create_dir_all(&dir).unwrap();
    let seeded = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tiny-seeded");
    let manifest = dir.join("zoo.json");
    std::fs::copy(seeded.join("zoo.json"), &manifest).unwrap();
    let m = manifest.to_str().unwrap().to_string();
    let convert = |ckpt: &std::path::Path, role: &str, out: &str, extra: &[&str]| {
        let o = dir.join(out);
        let mut args = vec!["convert", ckpt.to_str().unwrap(), "--role", role, "--out", o.to_str().unwrap()];
        args.extend(["--manifest", &m]);
        args.extend(extra);
        unforge(&args)
    };
    // A copied zoo.json without its weight files fails now, naming the first file it lacks.
    let xc = fixture("xception_deepfakebench.pth");
    let (ok, _, err) = convert(&xc, "detector", "x.safetensors", &["--input-size", "64"]);
    assert!(!ok && err.contains("weight file") && err.contains("is missing"), "{err}");
    assert!(!dir.join("x.safetensors").exists(), "a refused conversion wrote its weights");
    for entry in std::fs::read_dir(&seeded).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    // A 128 px generator alone clashes with the zoo's 64 px encoder: named, nothing written.
    let before = std::fs::read(&manifest).unwrap();
    let big = generator_checkpoint(128, &dir);
    let (ok, _, err) = convert(&big, "generator", "g128.safetensors", &[]);
    assert!(!ok && err.contains("encoder `e4e` predicts 10 W+ rows") && err.contains("takes 12"), "{err}");
    assert!(!dir.join("g128.safetensors").exists());
    assert_eq!(std::fs::read(&manifest).unwrap(), before, "a refused conversion changed the manifest");
    // Weights written elsewhere than beside the manifest would not be found by it.
    let elsewhere = std::env::temp_dir().join(format!("unforge-elsewhere-{}.safetensors", std::process::id()));
    let (ok, _, err) = convert(&xc, "detector", elsewhere.to_str().unwrap(), &["--input-size", "64"]);
    assert!(!ok && err.contains("beside its manifest"), "{err}");
    // A consistent addition joins: a second detector beside the seeded ones.
    let (ok, _, err) = convert(&xc, "detector", "xception-dfb.safetensors", &["--input-size", "64"]);
    assert!(ok, "{err}");
    let (m, files) = unforge::zoo::read_dir(&dir).unwrap();
    assert_eq!(m.detectors().count(), 4);
    unforge::zoo::Zoo::load(m, &files, &burn::tensor::Device::flex()).unwrap();
}

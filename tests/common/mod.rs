#![allow(dead_code)]

pub mod parity;

use burn::tensor::{Device, Tensor, TensorData};
use unforge::weights::StoredPrecision;
use unforge::zoo::{Manifest, Zoo, ZooFiles};
use unforge::zoo_init::TinyZooSpec;

/// The smallest zoo: 32 px generator (8 W+ rows), f32 weights.
pub fn tiny_spec() -> TinyZooSpec {
    TinyZooSpec {
        size: 32,
        style_dim: 16,
        encoder_width: 1,
        seed: 3,
        precision: StoredPrecision::F32,
        metric_networks: false,
    }
}

pub fn tiny_files() -> (Manifest, ZooFiles) {
    tiny_spec().build().expect("tiny zoo builds")
}

pub fn tiny_zoo() -> Zoo {
    let (m, f) = tiny_files();
    Zoo::load(m, &f, &Device::flex()).expect("tiny zoo loads")
}

/// The tiny zoo with a toy ArcFace and LPIPS, for the ID and LPIPS paths.
pub fn tiny_zoo_with_metrics() -> Zoo {
    let (m, f) = TinyZooSpec { metric_networks: true, ..tiny_spec() }.build().expect("tiny zoo builds");
    Zoo::load(m, &f, &Device::flex()).expect("tiny zoo loads")
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("float tensor")
}

pub fn tensor3(data: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
    Tensor::from_data(TensorData::new(data, shape), &Device::flex())
}

/// A smooth test image with a face-like blob.
pub fn test_image(size: usize) -> unforge::image::RgbaImage {
    let mut data = Vec::with_capacity(size * size * 4);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f32 / size as f32 - 0.5, y as f32 / size as f32 - 0.5);
            let inside = dx * dx / 0.09 + dy * dy / 0.16 < 1.0;
            let (r, g, b) =
                if inside { (220, 170, 140) } else { (40 + (x * 3 % 100) as u8, 60, 90 + (y * 2 % 100) as u8) };
            data.extend_from_slice(&[r, g, b, 255]);
        }
    }
    unforge::image::RgbaImage::new(size, size, data).expect("valid image")
}

/// Runs the `unforge` binary: (success, stdout, stderr).
pub fn unforge(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unforge")).args(args).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

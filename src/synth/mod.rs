//! The synthetic face world: procedural faces, forgeries with pixel-exact masks of what they
//! altered, and disjoint train / validation / test splits. Deterministic per seed on every
//! platform: the same index gives the same bytes.

pub mod camera;
pub mod face;
pub mod forgery;

use serde::{Deserialize, Serialize};

pub use face::{Canvas, FaceParams};
pub use forgery::{ForgeryKind, ForgeryStrength, forge};

use crate::error::{Error, Result};
use crate::image::RgbaImage;

/// A split: its images are drawn from a seed range no other split touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    /// The first seed of the split; each split has 2³² seeds.
    pub fn base_seed(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Validation => 1 << 32,
            Split::Test => 2 << 32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl std::str::FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "validation" | "val" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            other => Err(Error::config(format!("unknown split `{other}` (use train, validation or test)"))),
        }
    }
}

/// What an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "label", content = "forgery", rename_all = "snake_case")]
pub enum Label {
    Real,
    Fake(ForgeryKind),
}

/// One image of the world with its ground truth.
#[derive(Debug, Clone)]
pub struct Sample {
    pub split: Split,
    pub index: u64,
    pub seed: u64,
    pub label: Label,
    pub image: RgbaImage,
    /// The real image of the same identity and camera (the image itself for reals).
    pub pristine: RgbaImage,
    /// 255 where the image differs from `pristine` in any channel, else 0.
    pub mask: Vec<u8>,
}

impl Sample {
    /// Even indices are real, odd ones fake, cycling through the forgery kinds; at the
    /// default (visible) forgery strength.
    pub fn generate(split: Split, index: u64, size: usize) -> Self {
        Self::generate_with(split, index, size, &ForgeryStrength::default())
    }

    /// [`Sample::generate`] with the forgeries at `strength`: the faces, the reals and the
    /// kinds are the same at every strength; only what each forgery alters changes.
    pub fn generate_with(split: Split, index: u64, size: usize, strength: &ForgeryStrength) -> Self {
        let seed = split.base_seed() + index;
        let params = FaceParams::sample(seed);
        let clean = params.render(size);
        let shoot = |c: &Canvas| camera::capture(c, params.blur, params.noise, params.quantisation, seed).to_rgba8();
        let pristine = shoot(&clean);
        let label = if index.is_multiple_of(2) {
            Label::Real
        } else {
            Label::Fake(ForgeryKind::ALL[(index / 2) as usize % ForgeryKind::ALL.len()])
        };
        let image = match label {
            Label::Real => pristine.clone(),
            Label::Fake(kind) => shoot(&forge(kind, &params, &clean, seed, strength)),
        };
        let mask = image
            .data
            .chunks(4)
            .zip(pristine.data.chunks(4))
            .map(|(a, b)| if a[..3] != b[..3] { 255 } else { 0 })
            .collect();
        Self { split, index, seed, label, image, pristine, mask }
    }

    /// The person of image `index` of `split` in another shot: capture 0 is the image's own
    /// pristine capture, each other capture redraws light, background, pose, expression and
    /// camera (see [`FaceParams::recaptured`]). Photos of one identity, for identity networks.
    pub fn identity_capture(split: Split, index: u64, capture: u64, size: usize) -> RgbaImage {
        let seed = split.base_seed() + index;
        let person = FaceParams::sample(seed);
        let shot = crate::rng::SeededRng::new(seed ^ capture.wrapping_mul(0xA24B_AED4_963E_E407)).next_u64();
        let (params, camera_seed) = if capture == 0 { (person, seed) } else { (person.recaptured(shot), shot) };
        camera::capture(&params.render(size), params.blur, params.noise, params.quantisation, camera_seed).to_rgba8()
    }

    /// `test-000042.png`.
    pub fn file_name(&self) -> String {
        format!("{}-{:06}.png", self.split.name(), self.index)
    }

    pub fn altered_pixels(&self) -> usize {
        self.mask.iter().filter(|m| **m != 0).count()
    }
}

/// A square grid of images, `columns` wide (the contact sheet).
pub fn contact_sheet(images: &[RgbaImage], columns: usize) -> Result<RgbaImage> {
    let first = images.first().ok_or_else(|| Error::config("a contact sheet needs at least one image"))?;
    let (w, h) = (first.width, first.height);
    let rows = images.len().div_ceil(columns);
    let mut data = vec![255u8; columns * w * rows * h * 4];
    for (k, img) in images.iter().enumerate() {
        let (ox, oy) = ((k % columns) * w, (k / columns) * h);
        for y in 0..h.min(img.height) {
            let src = &img.data[y * img.width * 4..(y * img.width + w.min(img.width)) * 4];
            let dst = ((oy + y) * columns * w + ox) * 4;
            data[dst..dst + src.len()].copy_from_slice(src);
        }
    }
    RgbaImage::new(columns * w, rows * h, data)
}

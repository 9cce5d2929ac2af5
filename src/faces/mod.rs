//! Finding and aligning the face: BlazeFace over the whole picture, then the FFHQ crop of a
//! detected face (`align`), which is what e4e and StyleGAN2 were trained on.

pub mod align;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use align::{Quad, align};

use crate::error::{Error, Result};
use crate::image::RgbaImage;
use crate::networks::blazeface::{BlazeFace, BlazeFaceConfig, Detection, decode, weighted_nms};
use crate::readback::read_vec;
use crate::weights::{TensorFile, WeightSource};

/// Where the converted detector is kept, under the repository (the CLI) or the site (the page).
pub const DETECTOR_PATH: &str = "models/faces/blazeface.safetensors";

/// How faces are found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectSettings {
    /// The least score a face is kept with (MediaPipe's default for this model: 0.5).
    pub min_score: f32,
    /// Overlap above which two detections are one face (MediaPipe: 0.3).
    pub iou_threshold: f32,
    /// Faces narrower than this fraction of the picture's longer side are dropped: at 256 px
    /// the detector sees them as a few pixels and their keypoints are guesses.
    pub min_face: f32,
}

impl Default for DetectSettings {
    fn default() -> Self {
        Self { min_score: 0.5, iou_threshold: 0.3, min_face: 0.04 }
    }
}

/// A face in the picture's pixels (continuous coordinates: pixel `i` spans `[i, i + 1)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    pub score: f32,
    /// `[x_min, y_min, x_max, y_max]`.
    pub bbox: [f32; 4],
    /// BlazeFace's six: the person's right eye, left eye, nose tip, mouth centre, right and
    /// left ear tragions (`networks::blazeface::KEYPOINTS`).
    pub keypoints: [[f32; 2]; 6],
    /// The FFHQ crop of this face.
    pub quad: Quad,
}

impl Face {
    /// The box's area, in the picture's pixels.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1])
    }
}

/// The index of the largest face (by box area): the one the CLI and the page align by default.
pub fn largest(faces: &[Face]) -> Option<usize> {
    (0..faces.len()).max_by(|&a, &b| faces[a].area().total_cmp(&faces[b].area()))
}

/// BlazeFace on a device, ready to look at pictures.
pub struct FaceDetector {
    net: BlazeFace,
    cfg: BlazeFaceConfig,
    device: Device,
}

impl FaceDetector {
    /// From the converted detector's tensors (`unforge convert-tfjs`), bound strictly.
    pub fn new(file: TensorFile, origin: &str, device: &Device) -> Result<Self> {
        let cfg = BlazeFaceConfig::back();
        let source = WeightSource::load(file, origin);
        let net = BlazeFace::new(&source.root(device), &cfg)?;
        source.finish()?;
        Ok(Self { net, cfg, device: device.clone() })
    }

    /// From safetensors bytes.
    pub fn from_safetensors(bytes: &[u8], origin: &str, device: &Device) -> Result<Self> {
        Self::new(TensorFile::from_safetensors(bytes, origin)?, origin, device)
    }

    pub fn config(&self) -> &BlazeFaceConfig {
        &self.cfg
    }

    /// The network's raw `[anchors, 17]` output for a picture already at its input size.
    pub async fn raw(&self, input: &RgbaImage) -> Result<Vec<f32>> {
        let s = self.cfg.input_size;
        if (input.width, input.height) != (s, s) {
            return Err(Error::Image {
                origin: "face detector".into(),
                reason: format!("{}×{} given, the network takes {s}×{s}", input.width, input.height),
            });
        }
        let x = Tensor::from_data(TensorData::new(input.to_planar(), [1, 3, s, s]), &self.device);
        read_vec(self.net.forward(x)).await
    }

    /// Every face in the picture, best first: the picture is fitted into the network's square
    /// (its longer side to 256 px, area resampling, centred on neutral grey), the anchors
    /// decoded and merged, and each face mapped back to the picture's pixels with its FFHQ quad.
    pub async fn detect(&self, image: &RgbaImage, settings: &DetectSettings) -> Result<Vec<Face>> {
        let s = self.cfg.input_size;
        let long = image.width.max(image.height) as f32;
        let fit = |n: usize| ((n as f32 * s as f32 / long).round() as usize).clamp(1, s);
        let (w, h) = (fit(image.width), fit(image.height));
        let (ox, oy) = ((s - w) / 2, (s - h) / 2);
        let small = image.resize(w, h);
        let mut square = RgbaImage::new(s, s, [128, 128, 128, 255].repeat(s * s))?;
        for y in 0..h {
            let row = &small.data[y * w * 4..(y + 1) * w * 4];
            square.data[((y + oy) * s + ox) * 4..][..w * 4].copy_from_slice(row);
        }
        let raw = self.raw(&square).await?;
        let detections = weighted_nms(decode(&raw, &self.cfg, settings.min_score), settings.iou_threshold);
        let (kx, ky) = (image.width as f32 / w as f32, image.height as f32 / h as f32);
        let to_image = |p: [f32; 2]| [(p[0] * s as f32 - ox as f32) * kx, (p[1] * s as f32 - oy as f32) * ky];
        let faces = detections
            .into_iter()
            .map(|d: Detection| {
                let [a, b] = [to_image([d.bbox[0], d.bbox[1]]), to_image([d.bbox[2], d.bbox[3]])];
                let keypoints = d.keypoints.map(to_image);
                // BlazeFace's eyes are the eye centres and its mouth keypoint the mouth's centre:
                // they stand for dlib's eye means and the mean of the mouth corners.
                let quad = Quad::ffhq(keypoints[0], keypoints[1], keypoints[3]);
                Face { score: d.score, bbox: [a[0], a[1], b[0], b[1]], keypoints, quad }
            })
            .filter(|f| f.bbox[2] - f.bbox[0] >= settings.min_face * long)
            .collect();
        Ok(faces)
    }
}

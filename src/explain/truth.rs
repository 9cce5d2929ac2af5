//! Scoring an explanation against the truth: the pixels a forgery altered (known for the
//! synthetic world's fakes), and how well a map points at them.

use serde::{Deserialize, Serialize};

use super::{Cam, ResidualMap};
use crate::error::{Error, Result};
use crate::image::{RgbaImage, Square};
use crate::metrics::{auroc, downsample_mask};

/// The pixels a forgery altered, as a square mask of any size (resampled to the generator's).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub side: usize,
    pub altered: Vec<bool>,
}

impl GroundTruth {
    /// From a square mask image: altered where the first channel is above half.
    pub fn from_image(mask: &RgbaImage) -> Result<Self> {
        if mask.width != mask.height {
            return Err(Error::config(format!(
                "a ground-truth mask must be square, this one is {}×{}",
                mask.width, mask.height
            )));
        }
        Ok(Self { side: mask.width, altered: mask.data.chunks(4).map(|p| p[0] > 127).collect() })
    }

    /// The forgery mask of `image` from a mask picture of the same size, cut by the same
    /// `crop` as the image.
    pub fn for_image(mask: &RgbaImage, image: &RgbaImage, crop: &Square) -> Result<Self> {
        if (mask.width, mask.height) != (image.width, image.height) {
            return Err(Error::config(format!(
                "the mask is {}×{}, the image {}×{}",
                mask.width, mask.height, image.width, image.height
            )));
        }
        Self::from_image(&mask.crop_square(crop)?)
    }

    /// The mask on the generator's `size` × `size` grid: a cell is altered where any of its
    /// pixels is; a mask smaller than the grid is sampled at each cell's position.
    pub fn at(&self, size: usize) -> Vec<bool> {
        if self.side >= size {
            return downsample_mask(&self.altered, self.side, size);
        }
        let at = |i: usize| (i / size * self.side / size) * self.side + i % size * self.side / size;
        (0..size * size).map(|i| self.altered[at(i)]).collect()
    }
}

/// AUROCs against the ground-truth mask (`None` where the mask, on the generator's grid, is
/// empty or covers everything, or where the attack has no such map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Localisation {
    /// The change itself: the residual magnitude (latent) or the perturbation's (pixels).
    pub change_auroc: Option<f64>,
    /// The victim's Grad-CAM for "fake", reconstruction minus counterfactual (latent only).
    pub cam_auroc: Option<f64>,
}

impl Localisation {
    /// How well a counterfactual's residual, and the drop of the victim's Grad-CAM for "fake"
    /// from reconstruction to counterfactual (`cams`: input, reconstruction, counterfactual),
    /// point at the altered cells of `mask` (the generator's grid).
    pub fn of_counterfactual(residual: &ResidualMap, cams: &[Cam; 3], mask: &[bool]) -> Self {
        let cam_drop: Vec<f32> = cams[1].values.iter().zip(&cams[2].values).map(|(a, b)| a - b).collect();
        Self { change_auroc: auroc(&residual.magnitude(), mask), cam_auroc: auroc(&cam_drop, mask) }
    }

    /// How well a pixel attack's perturbation points at the altered cells of `mask`.
    pub fn of_perturbation(perturbation: &ResidualMap, mask: &[bool]) -> Self {
        Self { change_auroc: auroc(&perturbation.magnitude(), mask), cam_auroc: None }
    }
}

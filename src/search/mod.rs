//! The adversarial latent search (paper §2.3, Eq. 2-4): sign-gradient steps on the masked
//! rows of W+ until the detector calls the regenerated face real.

pub mod bench;
pub mod latent;
pub mod pixel;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inversion::PivotalTuning;

pub use latent::{LatentSearch, Objective};
pub use pixel::{PixelAttack, PixelMethod};

/// The rows of W+ in each level (Eq. 4): S (coarse), M (middle), D (fine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowBands {
    pub shallow: Vec<usize>,
    pub middle: Vec<usize>,
    pub deep: Vec<usize>,
}

impl RowBands {
    /// Thirds of `n_latent`: rows 0-5 / 6-11 / 12-17 for 18 rows, as in the paper.
    pub fn thirds(n_latent: usize) -> Self {
        let a = n_latent / 3;
        let b = 2 * n_latent / 3;
        Self { shallow: (0..a).collect(), middle: (a..b).collect(), deep: (b..n_latent).collect() }
    }

    pub fn validate(&self, n_latent: usize) -> Result<()> {
        for (name, rows) in [("shallow", &self.shallow), ("middle", &self.middle), ("deep", &self.deep)] {
            if let Some(r) = rows.iter().find(|&&r| r >= n_latent) {
                return Err(Error::config(format!("level {name}: row {r} is outside W+ (n_latent {n_latent})")));
            }
        }
        Ok(())
    }
}

/// A level of W+ as the paper names it, or every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Shallow,
    Middle,
    Deep,
    Full,
}

impl std::str::FromStr for Level {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "s" | "shallow" => Ok(Level::Shallow),
            "m" | "middle" => Ok(Level::Middle),
            "d" | "deep" => Ok(Level::Deep),
            "full" | "all" => Ok(Level::Full),
            other => Err(Error::config(format!("unknown level `{other}` (use S, M, D or full)"))),
        }
    }
}

/// Which rows of W+ the search may change (the mask vector of Eq. 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMask {
    rows: Vec<bool>,
}

impl RowMask {
    pub fn full(n_latent: usize) -> Self {
        Self { rows: vec![true; n_latent] }
    }

    pub fn from_rows(rows: &[usize], n_latent: usize) -> Result<Self> {
        let mut mask = vec![false; n_latent];
        for &r in rows {
            *mask.get_mut(r).ok_or_else(|| Error::config(format!("row {r} is outside W+ (n_latent {n_latent})")))? =
                true;
        }
        if rows.is_empty() {
            return Err(Error::config("the row mask selects no row"));
        }
        Ok(Self { rows: mask })
    }

    pub fn from_levels(levels: &[Level], bands: &RowBands, n_latent: usize) -> Result<Self> {
        let mut rows = Vec::new();
        for level in levels {
            match level {
                Level::Shallow => rows.extend(&bands.shallow),
                Level::Middle => rows.extend(&bands.middle),
                Level::Deep => rows.extend(&bands.deep),
                Level::Full => rows.extend(0..n_latent),
            }
        }
        Self::from_rows(&rows, n_latent)
    }

    /// From comma-separated level names (`"S,M"`, `"full"`), as the CLI and the page give them.
    pub fn from_level_names(names: &str, bands: &RowBands, n_latent: usize) -> Result<Self> {
        let levels = names.split(',').map(|l| l.trim().parse::<Level>()).collect::<Result<Vec<_>>>()?;
        Self::from_levels(&levels, bands, n_latent)
    }

    pub fn n_latent(&self) -> usize {
        self.rows.len()
    }

    pub fn contains(&self, row: usize) -> bool {
        self.rows.get(row).copied().unwrap_or(false)
    }
}

/// How a step turns the gradient into a move.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Method {
    /// I-FGSM, Eq. 3: `w ← w − α·sign(∇)`.
    Ifgsm,
    /// MI-FGSM: `g ← μ·g + ∇/mean|∇|`, `w ← w − α·sign(g)`.
    Mifgsm { mu: f32 },
    /// NI-FGSM: the gradient is taken at the look-ahead `w − α·μ·g`, then as MI-FGSM.
    Nifgsm { mu: f32 },
    /// PGD: `w ← clamp(w − α·∇/max|∇|, w₀ − β, w₀ + β)` (an L∞ ball around the inversion).
    Pgd { beta: f32 },
    /// Sign steps with a per-coordinate size (iRprop−): ×1.2 while a coordinate's gradient sign
    /// holds, ×0.5 and no move when it flips, within [α/64, α·max_scale]. Coordinates that
    /// would oscillate around the boundary stop doing so, so large steps cost little quality.
    Rprop { max_scale: f32 },
}

/// The largest Rprop step, in units of α.
pub const RPROP_MAX_SCALE: f32 = 8.0;

impl Method {
    /// From a name (`ifgsm`, `mifgsm`, `nifgsm`, `pgd`, `rprop`) and its parameters, as the CLI and the
    /// page give them.
    pub fn from_name(name: &str, mu: f32, beta: f32) -> Result<Self> {
        Self::from_name_with(name, mu, beta, RPROP_MAX_SCALE)
    }

    /// `from_name` with Rprop's largest step (in units of α) given too.
    pub fn from_name_with(name: &str, mu: f32, beta: f32, max_scale: f32) -> Result<Self> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "ifgsm" | "fgsm" => Ok(Method::Ifgsm),
            "mifgsm" => Ok(Method::Mifgsm { mu }),
            "nifgsm" => Ok(Method::Nifgsm { mu }),
            "pgd" => Ok(Method::Pgd { beta }),
            "rprop" => Ok(Method::Rprop { max_scale }),
            other => Err(Error::config(format!("unknown method `{other}` (use ifgsm, mifgsm, nifgsm, pgd or rprop)"))),
        }
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mse" => Ok(Loss::Mse),
            "ce" | "cross_entropy" | "crossentropy" => Ok(Loss::CrossEntropy),
            other => Err(Error::config(format!("unknown loss `{other}` (use mse or ce)"))),
        }
    }
}

/// The search loss on P(fake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// MSE(P_fake, target), the paper's choice.
    #[default]
    Mse,
    /// Cross-entropy against the target class (real when target < 0.5).
    CrossEntropy,
}

impl Loss {
    /// The mean loss over a batch of 2-class logits, and P(fake) `[B]`.
    pub fn on_logits(self, logits: Tensor<2>, target: f32) -> (Tensor<1>, Tensor<1>) {
        let b = logits.dims()[0];
        let p = burn::tensor::activation::softmax(logits.clone(), 1).narrow(1, 1, 1).reshape([b]);
        let loss = match self {
            Loss::Mse => (p.clone() - target).square().mean(),
            Loss::CrossEntropy => {
                let class = if target < 0.5 { 0 } else { 1 };
                burn::tensor::activation::log_softmax(logits, 1).narrow(1, class, 1).mean().neg()
            }
        };
        (loss, p)
    }

    /// The loss of one image from its P(fake).
    pub fn of(self, p_fake: f32, target: f32) -> f32 {
        match self {
            Loss::Mse => (p_fake - target).powi(2),
            Loss::CrossEntropy if target < 0.5 => -(1.0 - p_fake).max(f32::MIN_POSITIVE).ln(),
            Loss::CrossEntropy => -p_fake.max(f32::MIN_POSITIVE).ln(),
        }
    }
}

/// Weights λ of the optional quality terms added to the attack loss, each measured against
/// the reconstruction (the official `--mse_lambda`, `--lpips_lambda`, `--id_lambda`; all 0 in
/// its scripts).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Regularisers {
    /// λ · MSE(G(w), reconstruction), images in [-1, 1].
    #[serde(default)]
    pub pixel: f32,
    /// λ · LPIPS(G(w), reconstruction); needs a perceptual network in the zoo.
    #[serde(default)]
    pub lpips: f32,
    /// λ · (1 − cos(ArcFace(G(w)), ArcFace(reconstruction))); needs an identity network.
    #[serde(default)]
    pub id: f32,
}

impl Regularisers {
    pub fn any(&self) -> bool {
        self.pixel > 0.0 || self.lpips > 0.0 || self.id > 0.0
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [("pixel", self.pixel), ("lpips", self.lpips), ("id", self.id)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(format!("regulariser weight {name} must be ≥ 0, got {v}")));
            }
        }
        Ok(())
    }
}

/// Settings of one search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    #[serde(default = "default_method")]
    pub method: Method,
    #[serde(default)]
    pub loss: Loss,
    /// Step size α of Eq. 3.
    pub alpha: f32,
    /// Most steps per image.
    pub max_steps: usize,
    /// Early stop once P(real) − P(fake) > κ; with κ = 0, once P(fake) < 0.5.
    pub kappa: f32,
    /// Target P(fake) of the MSE loss (0: real).
    pub target: f32,
    #[serde(default)]
    pub regularisers: Regularisers,
    /// Halvings once an image succeeds: the counterfactual is pulled back along the line to the
    /// inversion as far as it still meets κ (forward passes only). This is the quality guard
    /// that lets large steps end as close to the inversion as small ones.
    #[serde(default)]
    pub refine: usize,
    /// Seeds every random choice (random starts). The generator's noise is always its fixed
    /// buffers.
    #[serde(default)]
    pub seed: u64,
    /// Tuning of the generator around the inversion before the search (off by default).
    #[serde(default)]
    pub pivotal_tuning: PivotalTuning,
    /// Search through the generator rendering at this side only (a preview: the skip
    /// architecture's RGB output there, the layers above not run), then render the
    /// counterfactual at full size. `None`: every step at full size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<usize>,
}

fn default_method() -> Method {
    Method::Ifgsm
}

impl Default for SearchConfig {
    /// The official README's settings: I-FGSM, MSE, α 2e-4, 50 steps, κ 0.2.
    fn default() -> Self {
        Preset::Readme.config()
    }
}

/// Named settings: the official scripts' and one for the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Artifact-Eraser's `attack.sh`: I-FGSM, MSE, α 8e-4, κ 0.2, 1000 steps (its β 0.05
    /// applies when PGD is chosen).
    Paper,
    /// The official README: I-FGSM, α 2e-4, 50 steps, κ 0.2.
    Readme,
    /// For the browser: Rprop sign steps that start at the paper's α and grow up to 8× on
    /// coordinates whose gradient sign holds, at most 200 steps, then 6 halvings back towards
    /// the inversion after success (`refine`); with an identity network in the zoo, also the ID
    /// regulariser at [`Preset::FAST_ID_WEIGHT`] (see [`Preset::config_with_identity`]).
    Fast,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Paper, Preset::Readme, Preset::Fast];

    /// Its name, as the CLI, the page and the reports write it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Readme => "readme",
            Preset::Fast => "fast",
        }
    }

    pub fn config(self) -> SearchConfig {
        let base = SearchConfig {
            method: Method::Ifgsm,
            loss: Loss::Mse,
            alpha: 2e-4,
            max_steps: 50,
            kappa: 0.2,
            target: 0.0,
            regularisers: Regularisers::default(),
            refine: 0,
            seed: 0,
            pivotal_tuning: PivotalTuning::off(),
            preview: None,
        };
        match self {
            Preset::Paper => SearchConfig { alpha: 8e-4, max_steps: 1000, ..base },
            Preset::Readme => base,
            Preset::Fast => SearchConfig {
                method: Method::Rprop { max_scale: RPROP_MAX_SCALE },
                alpha: 8e-4,
                max_steps: 200,
                refine: 6,
                ..base
            },
        }
    }

    /// λ of the fast preset's ID regulariser: its larger steps drift further from the person
    /// than the paper's small ones (ID 0.04 lower on two of three victims); this holds it.
    pub const FAST_ID_WEIGHT: f32 = 1.0;

    /// The preset for a zoo that has (`true`) or lacks an identity network: the fast preset
    /// adds its ID regulariser only where there is a network to compute it.
    pub fn config_with_identity(self, identity_network: bool) -> SearchConfig {
        let mut config = self.config();
        if matches!(self, Preset::Fast) && identity_network {
            config.regularisers.id = Self::FAST_ID_WEIGHT;
        }
        config
    }

    /// β of the paper's PGD runs (`attack.sh`).
    pub const PAPER_BETA: f32 = 0.05;
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "paper" => Ok(Preset::Paper),
            "readme" => Ok(Preset::Readme),
            "fast" => Ok(Preset::Fast),
            other => Err(Error::config(format!("unknown preset `{other}` (use paper, readme or fast)"))),
        }
    }
}

impl SearchConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::config(format!("alpha must be a positive number, got {}", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.kappa) {
            return Err(Error::config(format!("kappa must be in [0, 1), got {}", self.kappa)));
        }
        if !(0.0..=1.0).contains(&self.target) {
            return Err(Error::config(format!("target must be in [0, 1], got {}", self.target)));
        }
        if self.refine > 24 {
            return Err(Error::config(format!("refine takes at most 24 halvings, got {}", self.refine)));
        }
        self.regularisers.validate()?;
        self.pivotal_tuning.validate()?;
        if let Some(side) = self.preview.filter(|s| !s.is_power_of_two() || *s < 4) {
            return Err(Error::config(format!("preview size {side}: use a power of two of at least 4")));
        }
        match self.method {
            Method::Mifgsm { mu } | Method::Nifgsm { mu } if !(mu.is_finite() && mu >= 0.0) => {
                Err(Error::config(format!("momentum mu must be ≥ 0, got {mu}")))
            }
            Method::Pgd { beta } if !(beta.is_finite() && beta > 0.0) => {
                Err(Error::config(format!("PGD bound beta must be positive, got {beta}")))
            }
            Method::Rprop { max_scale } if !(max_scale.is_finite() && max_scale >= 1.0) => {
                Err(Error::config(format!("Rprop max_scale must be ≥ 1, got {max_scale}")))
            }
            _ => Ok(()),
        }
    }

    /// Whether an image with this P(fake) has reached the goal.
    pub fn reached(&self, p_fake: f32) -> bool {
        if self.kappa == 0.0 { p_fake < 0.5 } else { (1.0 - p_fake) - p_fake > self.kappa }
    }
}

/// What one step saw, before its update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub step: usize,
    /// P(fake) of each image at the latent this step started from.
    pub p_fake: Vec<f32>,
    pub loss: f32,
    /// Images still being moved after this step.
    pub active: Vec<bool>,
}

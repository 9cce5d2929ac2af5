//! The adversarial latent search (paper §2.3, Eq. 2-4): sign-gradient steps on the masked
//! rows of W+ until the detector calls the regenerated face real.

use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::networks::stylegan2::Generator;
use crate::networks::Detector;

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
            *mask.get_mut(r).ok_or_else(|| Error::config(format!("row {r} is outside W+ (n_latent {n_latent})")))? = true;
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
}

impl Method {
    /// From a name (`ifgsm`, `mifgsm`, `nifgsm`, `pgd`) and its parameters, as the CLI and the
    /// page give them.
    pub fn from_name(name: &str, mu: f32, beta: f32) -> Result<Self> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "ifgsm" | "fgsm" => Ok(Method::Ifgsm),
            "mifgsm" => Ok(Method::Mifgsm { mu }),
            "nifgsm" => Ok(Method::Nifgsm { mu }),
            "pgd" => Ok(Method::Pgd { beta }),
            other => Err(Error::config(format!("unknown method `{other}` (use ifgsm, mifgsm, nifgsm or pgd)"))),
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
    /// The loss of one image from its P(fake).
    pub fn of(self, p_fake: f32, target: f32) -> f32 {
        match self {
            Loss::Mse => (p_fake - target).powi(2),
            Loss::CrossEntropy if target < 0.5 => -(1.0 - p_fake).max(f32::MIN_POSITIVE).ln(),
            Loss::CrossEntropy => -p_fake.max(f32::MIN_POSITIVE).ln(),
        }
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
}

fn default_method() -> Method {
    Method::Ifgsm
}

impl Default for SearchConfig {
    /// The official README's settings: I-FGSM, MSE, α 2e-4, 50 steps, κ 0.2.
    fn default() -> Self {
        Self { method: Method::Ifgsm, loss: Loss::Mse, alpha: 2e-4, max_steps: 50, kappa: 0.2, target: 0.0 }
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
        match self.method {
            Method::Mifgsm { mu } | Method::Nifgsm { mu } if !(mu.is_finite() && mu >= 0.0) => {
                Err(Error::config(format!("momentum mu must be ≥ 0, got {mu}")))
            }
            Method::Pgd { beta } if !(beta.is_finite() && beta > 0.0) => Err(Error::config(format!("PGD bound beta must be positive, got {beta}"))),
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

/// The differentiable objective: MSE(P_fake(D(G(w))), target) (or cross-entropy), and its
/// gradient in W+.
pub struct Objective<'a> {
    pub generator: &'a Generator,
    pub detector: &'a Detector,
    pub target: f32,
    pub loss: Loss,
}

impl Objective<'_> {
    /// Loss, P(fake) `[B]` and ∇_w `[B, n_latent, style_dim]` at `latent`.
    pub fn gradient(&self, latent: &Tensor<3>) -> (Tensor<1>, Tensor<1>, Tensor<3>) {
        let w = latent.clone().autodiff().require_grad();
        let logits = self.detector.logits(self.generator.synthesize(w.clone()));
        let b = logits.dims()[0];
        let p = burn::tensor::activation::softmax(logits.clone(), 1).narrow(1, 1, 1).reshape([b]);
        let loss = match self.loss {
            Loss::Mse => (p.clone() - self.target).square().mean(),
            Loss::CrossEntropy => {
                let class = if self.target < 0.5 { 0 } else { 1 };
                let logp = burn::tensor::activation::log_softmax(logits, 1).narrow(1, class, 1);
                logp.mean().neg()
            }
        };
        let grads = loss.backward();
        let g = w.grad(&grads).expect("the latent requires grad");
        (loss.without_autodiff(), p.without_autodiff(), g)
    }
}

/// I-FGSM in W+ (Eq. 3) with a row mask and per-image early stop.
pub struct LatentSearch<'a> {
    objective: Objective<'a>,
    config: SearchConfig,
    latent: Tensor<3>,
    /// `[1, n_latent, 1]`.
    row_mask: Tensor<3, Bool>,
    active: Vec<bool>,
    step: usize,
    /// The inversion, centre of PGD's ball.
    origin: Tensor<3>,
    /// MI/NI-FGSM's accumulated direction.
    momentum: Option<Tensor<3>>,
}

impl<'a> LatentSearch<'a> {
    pub fn new(generator: &'a Generator, detector: &'a Detector, latent: Tensor<3>, mask: &RowMask, config: SearchConfig) -> Result<Self> {
        config.validate()?;
        let [_, n, _] = latent.dims();
        if mask.n_latent() != n {
            return Err(Error::config(format!("row mask has {} rows, W+ has {n}", mask.n_latent())));
        }
        let row_mask = row_mask_tensor(mask, &latent.device());
        let b = latent.dims()[0];
        let latent = latent.without_autodiff();
        Ok(Self {
            objective: Objective { generator, detector, target: config.target, loss: config.loss },
            config,
            origin: latent.clone(),
            latent,
            row_mask,
            active: vec![true; b],
            step: 0,
            momentum: None,
        })
    }

    pub fn latent(&self) -> Tensor<3> {
        self.latent.clone()
    }

    pub fn steps_taken(&self) -> usize {
        self.step
    }

    pub fn active(&self) -> &[bool] {
        &self.active
    }

    /// True once every image reached the goal or the step cap.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.max_steps || self.active.iter().all(|a| !a)
    }

    /// One step: evaluate, stop the images that reached the goal, move the others.
    /// The readback is async so the browser never blocks on the GPU.
    pub async fn step(&mut self) -> Result<StepReport> {
        let alpha = self.config.alpha;
        let at = match (self.config.method, &self.momentum) {
            (Method::Nifgsm { mu }, Some(g)) => self.latent.clone() - g.clone() * (alpha * mu),
            _ => self.latent.clone(),
        };
        let (_, p, grad) = self.objective.gradient(&at);
        // One readback per step: the loss follows from P(fake) on the host.
        let p_fake: Vec<f32> = read_vec(p).await?;
        let (loss_fn, target) = (self.config.loss, self.config.target);
        let loss = p_fake.iter().map(|p| loss_fn.of(*p, target)).sum::<f32>() / p_fake.len() as f32;
        for (a, &p) in self.active.iter_mut().zip(&p_fake) {
            if self.config.reached(p) {
                *a = false;
            }
        }
        let [b, n, sd] = self.latent.dims();
        let device = self.latent.device();
        let active: Vec<bool> = self.active.clone();
        let image_mask = Tensor::<3, Bool>::from_data(TensorData::new(active.clone(), [b, 1, 1]), &device).expand([b, n, sd]);
        let mask = self.row_mask.clone().expand([b, n, sd]).bool_and(image_mask);
        let moved = match self.config.method {
            Method::Ifgsm => self.latent.clone() - grad.sign() * alpha,
            Method::Mifgsm { mu } | Method::Nifgsm { mu } => {
                let l1 = grad.clone().abs().mean_dims(&[1, 2]) + 1e-12;
                let g = match self.momentum.take() {
                    Some(m) => m * mu + grad / l1,
                    None => grad / l1,
                };
                self.momentum = Some(g.clone());
                self.latent.clone() - g.sign() * alpha
            }
            Method::Pgd { beta } => {
                let linf = grad.clone().abs().max_dim(1).max_dim(2) + 1e-12;
                let stepped = self.latent.clone() - grad / linf * alpha;
                let (lo, hi) = (self.origin.clone() - beta, self.origin.clone() + beta);
                stepped.max_pair(lo).min_pair(hi)
            }
        };
        self.latent = self.latent.clone().mask_where(mask, moved);
        let report = StepReport { step: self.step, p_fake, loss, active };
        self.step += 1;
        Ok(report)
    }
}

fn row_mask_tensor(mask: &RowMask, device: &Device) -> Tensor<3, Bool> {
    let n = mask.n_latent();
    let rows: Vec<bool> = (0..n).map(|r| mask.contains(r)).collect();
    Tensor::<3, Bool>::from_data(TensorData::new(rows, [1, n, 1]), device)
}

/// Reads a float tensor back to the host without blocking.
pub async fn read_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Backend(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
}

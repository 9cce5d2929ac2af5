//! The image-space baselines of the paper's tables: FGSM, I-FGSM/PGD and MI-FGSM, as
//! torchattacks defines them. Budgets are in /255 units of the [0, 1] image (torchattacks'
//! convention); the networks see [-1, 1] images, where the same budget is twice as large, and
//! the detector applies its own input normalisation after that.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::Loss;
use crate::error::{Error, Result};
use crate::networks::Detector;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum PixelMethod {
    /// One step of size ε: `x + ε·sign(∇)`.
    Fgsm,
    /// I-FGSM / PGD: steps of α, projected to the ε-ball and [0, 1]; with a random start in
    /// the ball (PGD) or without (I-FGSM, BIM).
    Pgd { random_start: bool },
    /// MI-FGSM: `g ← μ·g + ∇/mean|∇|`, steps of α·sign(g), projected.
    Mifgsm { mu: f32 },
}

impl PixelMethod {
    pub fn from_name(name: &str, mu: f32) -> Result<Self> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "fgsm" => Ok(PixelMethod::Fgsm),
            "pgd" => Ok(PixelMethod::Pgd { random_start: true }),
            "ifgsm" | "bim" => Ok(PixelMethod::Pgd { random_start: false }),
            "mifgsm" => Ok(PixelMethod::Mifgsm { mu }),
            other => Err(Error::config(format!("unknown pixel attack `{other}` (use fgsm, ifgsm, pgd or mifgsm)"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            PixelMethod::Fgsm => "fgsm",
            PixelMethod::Pgd { random_start: true } => "pgd",
            PixelMethod::Pgd { random_start: false } => "ifgsm",
            PixelMethod::Mifgsm { .. } => "mifgsm",
        }
    }
}

/// One image-space attack: method, budget ε and step α (both /255), steps, loss and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelAttack {
    pub method: PixelMethod,
    pub eps: f32,
    pub alpha: f32,
    pub steps: usize,
    #[serde(default)]
    pub loss: Loss,
    #[serde(default)]
    pub seed: u64,
}

impl PixelAttack {
    /// torchattacks' defaults: ε 8/255, α 2/255, 10 steps, μ 1 (FGSM takes one step of ε).
    pub fn torchattacks(method: PixelMethod) -> Self {
        Self { method, eps: 8.0, alpha: 2.0, steps: 10, loss: Loss::CrossEntropy, seed: 0 }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps <= 255.0) {
            return Err(Error::config(format!("pixel attack eps must be in (0, 255] (/255 units), got {}", self.eps)));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::config(format!("pixel attack alpha must be positive (/255 units), got {}", self.alpha)));
        }
        if self.steps == 0 && self.method != PixelMethod::Fgsm {
            return Err(Error::config("an iterative pixel attack needs at least one step"));
        }
        if let PixelMethod::Mifgsm { mu } = self.method
            && !(mu.is_finite() && mu >= 0.0)
        {
            return Err(Error::config(format!("momentum mu must be ≥ 0, got {mu}")));
        }
        Ok(())
    }

    /// ∇ of the loss towards "real" with respect to images in [-1, 1].
    fn gradient(&self, detector: &Detector, images: &Tensor<4>) -> Tensor<4> {
        let x = images.clone().autodiff().require_grad();
        let (loss, _) = self.loss.on_logits(detector.logits(x.clone()), 0.0);
        let grads = loss.backward();
        x.grad(&grads).expect("the images require grad")
    }

    /// The adversarial images for `images` (`[B, 3, S, S]` in [-1, 1]), in [-1, 1].
    pub fn run(&self, detector: &Detector, images: Tensor<4>) -> Result<Tensor<4>> {
        self.validate()?;
        // /255 of [0, 1] is 2/255 of [-1, 1].
        let (eps, alpha) = (self.eps * 2.0 / 255.0, self.alpha * 2.0 / 255.0);
        let project = |x: Tensor<4>, origin: &Tensor<4>| {
            x.max_pair(origin.clone() - eps).min_pair(origin.clone() + eps).clamp(-1.0, 1.0)
        };
        let origin = images;
        match self.method {
            PixelMethod::Fgsm => {
                let g = self.gradient(detector, &origin);
                Ok((origin.clone() - g.sign() * eps).clamp(-1.0, 1.0))
            }
            PixelMethod::Pgd { random_start } => {
                let mut x = origin.clone();
                if random_start {
                    // A seeded uniform draw in the ball, so the same seed gives the same bits.
                    let mut rng = crate::rng::SeededRng::new(self.seed);
                    let n = x.dims().iter().product::<usize>();
                    let noise: Vec<f32> = (0..n).map(|_| (2.0 * rng.uniform() - 1.0) * eps).collect();
                    let noise = Tensor::<4>::from_data(burn::tensor::TensorData::new(noise, x.dims()), &x.device());
                    x = project(x + noise, &origin);
                }
                for _ in 0..self.steps {
                    let g = self.gradient(detector, &x);
                    x = project(x - g.sign() * alpha, &origin);
                }
                Ok(x)
            }
            PixelMethod::Mifgsm { mu } => {
                let mut x = origin.clone();
                let mut momentum: Option<Tensor<4>> = None;
                for _ in 0..self.steps {
                    let g = self.gradient(detector, &x);
                    let g = g.clone() / (g.abs().mean_dims(&[1, 2, 3]) + 1e-12);
                    let m = match momentum.take() {
                        Some(m) => m * mu + g,
                        None => g,
                    };
                    x = project(x - m.clone().sign() * alpha, &origin);
                    momentum = Some(m);
                }
                Ok(x)
            }
        }
    }
}

//! The latent search itself: the objective in W+ and the iterative sign-gradient steps.

use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::{Loss, Method, Regularisers, RowMask, SearchConfig, StepReport};
use crate::error::{Error, Result};
use crate::metrics::QualityNetworks;
use crate::networks::Detector;
use crate::networks::stylegan2::Generator;
use crate::readback::read_vec;

/// The regularisers' fixed side: the reconstruction, its ArcFace embedding, and the weights.
struct QualityTerms<'a> {
    weights: Regularisers,
    reference: Tensor<4>,
    reference_identity: Option<Tensor<2>>,
    networks: QualityNetworks<'a>,
}

/// The differentiable objective: MSE(P_fake(D(G(w))), target) (or cross-entropy), plus the
/// optional quality terms, and its gradient in W+.
pub struct Objective<'a> {
    pub generator: &'a Generator,
    pub detector: &'a Detector,
    pub target: f32,
    pub loss: Loss,
    quality: Option<QualityTerms<'a>>,
}

impl<'a> Objective<'a> {
    /// The attack loss alone.
    pub fn new(generator: &'a Generator, detector: &'a Detector, target: f32, loss: Loss) -> Self {
        Self { generator, detector, target, loss, quality: None }
    }

    /// Adds the quality terms of `weights`, measured against `reconstruction`. A term whose
    /// network is missing is an error naming it.
    pub fn with_regularisers(
        mut self,
        weights: Regularisers,
        reconstruction: Tensor<4>,
        networks: QualityNetworks<'a>,
    ) -> Result<Self> {
        if !weights.any() {
            return Ok(self);
        }
        if weights.lpips > 0.0 && networks.perceptual.is_none() {
            return Err(Error::config("the LPIPS regulariser needs a perceptual (LPIPS) network in the zoo"));
        }
        let reference_identity = match networks.identity {
            Some(arcface) if weights.id > 0.0 => Some(arcface.embed_aligned(reconstruction.clone())),
            None if weights.id > 0.0 => {
                return Err(Error::config("the ID regulariser needs an identity (ArcFace) network in the zoo"));
            }
            _ => None,
        };
        self.quality = Some(QualityTerms { weights, reference: reconstruction, reference_identity, networks });
        Ok(self)
    }

    /// Loss, P(fake) `[B]` and ∇_w `[B, n_latent, style_dim]` at `latent`.
    pub fn gradient(&self, latent: &Tensor<3>) -> (Tensor<1>, Tensor<1>, Tensor<3>) {
        let (loss, p, grad, _) = self.evaluate(latent);
        (loss, p, grad)
    }

    /// `gradient`, and the images G(w) it was taken at.
    fn evaluate(&self, latent: &Tensor<3>) -> (Tensor<1>, Tensor<1>, Tensor<3>, Tensor<4>) {
        let w = latent.clone().autodiff().require_grad();
        let images = self.generator.synthesize(w.clone());
        let rendered = images.clone().without_autodiff();
        let (mut loss, p) = self.loss.on_logits(self.detector.logits(images.clone()), self.target);
        if let Some(q) = &self.quality {
            let reference = q.reference.clone().autodiff();
            if q.weights.pixel > 0.0 {
                loss = loss + (images.clone() - reference.clone()).square().mean() * q.weights.pixel;
            }
            if let (Some(lpips), true) = (q.networks.perceptual, q.weights.lpips > 0.0) {
                loss = loss + lpips.forward(images.clone(), reference).mean() * q.weights.lpips;
            }
            if let (Some(arcface), Some(emb)) = (q.networks.identity, &q.reference_identity) {
                let cos = (arcface.embed_aligned(images) * emb.clone().autodiff()).sum_dim(1);
                loss = loss + (cos.neg() + 1.0).mean() * q.weights.id;
            }
        }
        let grads = loss.backward();
        let g = w.grad(&grads).expect("the latent requires grad");
        (loss.without_autodiff(), p.without_autodiff(), g, rendered)
    }
}

/// The search in W+: sign-gradient steps (I-FGSM, Eq. 3; MI-FGSM, NI-FGSM, PGD or Rprop, as
/// `SearchConfig::method` says) on the masked rows, with per-image early stop and refine.
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
    /// The images the last step was evaluated at (for live views: no second forward).
    evaluated: Option<Tensor<4>>,
    /// MI/NI-FGSM's accumulated direction.
    momentum: Option<Tensor<3>>,
    /// Rprop's per-coordinate step and the last sign it moved by.
    rprop: Option<(Tensor<3>, Tensor<3>)>,
}

impl<'a> LatentSearch<'a> {
    /// A search without quality regularisers; see `with_regularisers`.
    pub fn new(
        generator: &'a Generator,
        detector: &'a Detector,
        latent: Tensor<3>,
        mask: &RowMask,
        config: SearchConfig,
    ) -> Result<Self> {
        config.validate()?;
        let [_, n, _] = latent.dims();
        if mask.n_latent() != n {
            return Err(Error::config(format!("row mask has {} rows, W+ has {n}", mask.n_latent())));
        }
        let row_mask = row_mask_tensor(mask, &latent.device());
        let b = latent.dims()[0];
        let latent = latent.without_autodiff();
        Ok(Self {
            objective: Objective::new(generator, detector, config.target, config.loss),
            config,
            origin: latent.clone(),
            evaluated: None,
            latent,
            row_mask,
            active: vec![true; b],
            step: 0,
            momentum: None,
            rprop: None,
        })
    }

    /// Adds the config's regularisers against the generator's rendering of the starting latent.
    pub fn with_regularisers(mut self, networks: QualityNetworks<'a>) -> Result<Self> {
        if self.config.regularisers.any() {
            let reconstruction = self.objective.generator.synthesize(self.origin.clone());
            self.objective = self.objective.with_regularisers(self.config.regularisers, reconstruction, networks)?;
        }
        Ok(self)
    }

    pub fn latent(&self) -> Tensor<3> {
        self.latent.clone()
    }

    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// G(w) at the point the last step evaluated: the latent it started from (NI-FGSM: its
    /// look-ahead point). `None` before the first step.
    pub fn evaluated_images(&self) -> Option<Tensor<4>> {
        self.evaluated.clone()
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
        let (_, p, grad, rendered) = self.objective.evaluate(&at);
        self.evaluated = Some(rendered);
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
        let mask = self.row_mask.clone().expand([b, n, sd]).bool_and(image_mask_of(&active, [b, n, sd], &device));
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
            Method::Rprop { max_scale } => {
                // iRprop−: a coordinate whose gradient sign holds speeds up, one that flips slows
                // down and skips this move; steps stay in [α/64, α·max_scale].
                let sign = grad.sign();
                let (step, last) = match self.rprop.take() {
                    Some(state) => state,
                    None => (sign.zeros_like() + alpha, sign.zeros_like()),
                };
                let agreement = sign.clone() * last;
                let step = step
                    .clone()
                    .mask_where(agreement.clone().greater_elem(0.0), (step.clone() * 1.2).clamp_max(alpha * max_scale))
                    .mask_where(agreement.clone().lower_elem(0.0), (step * 0.5).clamp_min(alpha / 64.0));
                let sign = sign.mask_fill(agreement.lower_elem(0.0), 0.0);
                let moved = self.latent.clone() - sign.clone() * step.clone();
                self.rprop = Some((step, sign));
                moved
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

impl LatentSearch<'_> {
    /// The quality guard (`refine` halvings): each image that reached the goal is pulled back
    /// along the straight line to its inversion, by bisection, to the point nearest the
    /// inversion that still meets κ (to 2^−refine of its whole change). It costs one forward
    /// pass per halving and never undoes a success; a no-op with `refine` 0.
    pub async fn refine(&mut self) -> Result<()> {
        let succeeded: Vec<bool> = self.active.iter().map(|a| !a).collect();
        if self.config.refine == 0 || !succeeded.iter().any(|s| *s) {
            return Ok(());
        }
        let (mut failing, mut passing) = (self.origin.clone(), self.latent.clone());
        let dims = self.latent.dims();
        let device = self.latent.device();
        let [b, _, _] = dims;
        for _ in 0..self.config.refine {
            let mid = (failing.clone() + passing.clone()) * 0.5;
            let p = read_vec(self.objective.detector.p_fake(self.objective.generator.synthesize(mid.clone()))).await?;
            let pass: Vec<bool> = (0..b).map(|i| succeeded[i] && self.config.reached(p[i])).collect();
            let fail: Vec<bool> = (0..b).map(|i| succeeded[i] && !pass[i]).collect();
            passing = passing.mask_where(image_mask_of(&pass, dims, &device), mid.clone());
            failing = failing.mask_where(image_mask_of(&fail, dims, &device), mid);
        }
        self.latent = passing;
        Ok(())
    }
}

/// `[B, n, d]` true for the images where `select` is.
fn image_mask_of(select: &[bool], [b, n, d]: [usize; 3], device: &Device) -> Tensor<3, Bool> {
    Tensor::<3, Bool>::from_data(TensorData::new(select.to_vec(), [b, 1, 1]), device).expand([b, n, d])
}

fn row_mask_tensor(mask: &RowMask, device: &Device) -> Tensor<3, Bool> {
    let n = mask.n_latent();
    let rows: Vec<bool> = (0..n).map(|r| mask.contains(r)).collect();
    Tensor::<3, Bool>::from_data(TensorData::new(rows, [1, n, 1]), device)
}

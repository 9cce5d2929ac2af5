//! Unforge: counterfactual explanations for face-forgery detectors.
//!
//! A face is inverted into StyleGAN2's W+ space by an e4e encoder; the latent is pushed by
//! sign-gradient steps until a detector calls the regenerated face real. The difference
//! between the counterfactual and the reconstruction shows what the detector relied on.
//!
//! This crate is the backend-agnostic core plus two thin fronts: the browser binding (`web`,
//! wasm32 only) and the `unforge` CLI (`src/bin/unforge/`). Its layers, from the bottom; each
//! uses only those listed before it (docs/ARCHITECTURE.md draws them):
//!
//! 1. `error`, `rng`, `precision`, `readback` — errors, seeded randomness, the devices' float
//!    type, tensors back to the host;
//! 2. `image`, `weights` — pictures in and out, safetensors bound by PyTorch key names;
//! 3. `networks` — StyleGAN2, e4e, the detectors, ArcFace, LPIPS, BlazeFace;
//! 4. `metrics`, `faces` — PSNR, SSIM, TV, ESNLE, AUROC, and `Quality` (with LPIPS and ID);
//!    BlazeFace over a whole picture and the FFHQ alignment;
//! 5. `inversion` — the encoder's inversion and pivotal tuning (`Inverter`);
//! 6. `search`, `explain` — the latent and pixel searches; residuals, CAMs, truth scoring;
//! 7. `zoo`, `zoo_init`, `convert` — a set of networks from a manifest;
//! 8. `explanation` — the spine: one explanation, crop to quality, top to bottom;
//! 9. `options`, `report` — the typed boundary of the fronts: options in, a report out;
//! 10. `eval`, `synth`, `train` — the paper's experiments, the synthetic world, training.

#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
pub mod error;
pub mod eval;
pub mod explain;
pub mod explanation;
pub mod faces;
pub mod image;
pub mod inversion;
pub mod metrics;
pub mod networks;
pub mod options;
pub mod precision;
pub mod readback;
pub mod report;
pub mod rng;
pub mod search;
pub mod synth;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod weights;
pub mod zoo;
pub mod zoo_init;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
pub use readback::block_on;

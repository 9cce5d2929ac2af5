//! `unforge bench`: the time of one search step and one pivotal tuning step.

use std::time::Instant;

use serde_json::json;
use unforge::error::Result;
use unforge::inversion::PivotalTuning;
use unforge::networks::stylegan2::{Generator, GeneratorConfig};
use unforge::networks::xception::{Xception, XceptionConfig};
use unforge::networks::{Detector, DetectorNet, Normalization};
use unforge::readback::{block_on, read_vec};
use unforge::search::Objective;
use unforge::weights::WeightSource;

use crate::common::open_backend;

/// Times one search step: the rosinality generator (keyed weights) and Xception, forward
/// and backward to W+, batch 1, on `--backend`; and one pivotal tuning step against it.
/// Prints the median over `--steps`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    channel_multiplier: usize,
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// flex (CPU) or wgpu (GPU; needs a build with `--features wgpu`).
    #[arg(long, default_value = "flex")]
    backend: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let BenchArgs { size, channel_multiplier: cm, steps, json, backend } = args;
    let (size, cm, steps, json) = (*size, *cm, *steps, *json);
    let device = open_backend(backend)?;
    let source = WeightSource::keyed(1);
    let cfg = GeneratorConfig::rosinality(size, cm);
    cfg.validate()?;
    let g = Generator::new(&source.root(&device), &cfg)?;
    let net = Xception::new(&source.root(&device), &XceptionConfig::original(2))?;
    let det = Detector { net: DetectorNet::Xception(net), input_size: size, normalization: Normalization::MinusOneOne };
    let latent = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(
            unforge::rng::SeededRng::new(2).normals(cfg.n_latent() * 512),
            [1, cfg.n_latent(), 512],
        ),
        &device,
    );
    let objective = Objective::new(&g, &det, 0.0, unforge::search::Loss::Mse);
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let sync = |t: burn::tensor::Tensor<1>| block_on(read_vec(t)).map(|_| ());
    let gen_grad = || {
        let w = latent.clone().autodiff().require_grad();
        let grads = g.synthesize(w.clone()).mean().backward();
        sync(w.grad(&grads).expect("grad").reshape([-1]))
    };
    // Pivotal tuning's step: the generator's forward and backward to its weights, then Adam
    // (timed over a few steps so the copy made for tuning is a small part of it).
    const TUNING_STEPS: usize = 3;
    let target = g.synthesize(latent.clone()).detach() * 0.9;
    let tuning = PivotalTuning::steps(TUNING_STEPS);
    let tune = || {
        let tuned = block_on(tuning.tune(&g, latent.clone(), target.clone(), &mut |_| {}))?;
        sync(tuned.synthesize(latent.clone()).reshape([-1]))
    };
    let (mut gen_fwd, mut full_fwd, mut step, mut gen_step, mut tune_step) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..steps.max(1) + 1 {
        let a = time(&|| sync(g.synthesize(latent.clone()).reshape([-1])))?;
        let b = time(&|| sync(det.p_fake(g.synthesize(latent.clone()))))?;
        let c = time(&|| {
            let (_, _, grad) = objective.gradient(&latent);
            sync((latent.clone() - grad.sign() * 1e-3).reshape([-1]))
        })?;
        let d = time(&gen_grad)?;
        let e = time(&tune)? / TUNING_STEPS as f64;
        if i > 0 {
            tune_step.push(e);
            // The first round warms caches and allocators.
            gen_step.push(d);
            gen_fwd.push(a);
            full_fwd.push(b);
            step.push(c);
        }
    }
    let (a, b, c, d, e) = (median(gen_fwd), median(full_fwd), median(step), median(gen_step), median(tune_step));
    if json {
        println!(
            "{}",
            json!({ "backend": backend, "size": size, "channel_multiplier": cm, "steps": steps, "generator_forward_s": a, "forward_s": b, "step_s": c, "generator_backward_s": d, "tuning_step_s": e })
        );
    } else {
        println!(
            "one search step, {backend}, batch 1, generator {size} px (channel multiplier {cm}) + Xception at {size} px, median of {steps}:"
        );
        println!("  generator forward            {a:.3} s");
        println!("  generator + detector forward {b:.3} s");
        println!("  generator forward + backward {d:.3} s");
        println!("  forward + backward + update  {c:.3} s");
        println!("  pivotal tuning step          {e:.3} s ({:.2}× the search step)", e / c);
    }
    Ok(())
}

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
    let shared = g.clone().with_fused(false);
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let sync = |t: burn::tensor::Tensor<1>| block_on(read_vec(t)).map(|_| ());
    // One search step's parts with `generator`: its forward, with the detector, its backward to W+,
    // and the whole step.
    let parts = |generator: &Generator| -> Result<[f64; 4]> {
        let objective = Objective::new(generator, &det, 0.0, unforge::search::Loss::Mse);
        Ok([
            time(&|| sync(generator.synthesize(latent.clone()).reshape([-1])))?,
            time(&|| sync(det.p_fake(generator.synthesize(latent.clone()))))?,
            time(&|| {
                let w = latent.clone().autodiff().require_grad();
                let grads = generator.synthesize(w.clone()).mean().backward();
                sync(w.grad(&grads).expect("grad").reshape([-1]))
            })?,
            time(&|| {
                let (_, _, grad) = objective.gradient(&latent);
                sync((latent.clone() - grad.sign() * 1e-3).reshape([-1]))
            })?,
        ])
    };
    // Pivotal tuning's step: the generator's forward and backward to its weights, then Adam
    // (timed over a few steps so the copy made for tuning is a small part of it), in each form.
    const TUNING_STEPS: usize = 3;
    let target = g.synthesize(latent.clone()).detach() * 0.9;
    let tuning = PivotalTuning::steps(TUNING_STEPS);
    let tune = |generator: &Generator| {
        time(&|| {
            let tuned = block_on(tuning.tune(generator, latent.clone(), target.clone(), &mut |_| {}))?;
            sync(tuned.synthesize(latent.clone()).reshape([-1]))
        })
        .map(|t| t / TUNING_STEPS as f64)
    };
    // Interleaved, so both forms see the same machine; the first round warms caches.
    let (mut fused, mut unfused) = (Vec::new(), Vec::new());
    for i in 0..steps.max(1) + 1 {
        let (a, ta) = (parts(&g)?, tune(&g)?);
        let (b, tb) = (parts(&shared)?, tune(&shared)?);
        if i > 0 {
            fused.push((a, ta));
            unfused.push((b, tb));
        }
    }
    let medians = |runs: &[([f64; 4], f64)]| -> [f64; 5] {
        let col = |j: usize| median(runs.iter().map(|(p, t)| if j < 4 { p[j] } else { *t }).collect());
        [col(0), col(1), col(2), col(3), col(4)]
    };
    let (f, n) = (medians(&fused), medians(&unfused));
    let names = ["generator_forward_s", "forward_s", "generator_backward_s", "step_s", "tuning_step_s"];
    if json {
        let form = |m: &[f64; 5]| {
            names.iter().zip(m).map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()
        };
        println!(
            "{}",
            json!({ "backend": backend, "size": size, "channel_multiplier": cm, "steps": steps, "fused": form(&f), "non_fused": form(&n) })
        );
    } else {
        println!(
            "one search step, {backend}, batch 1, generator {size} px (channel multiplier {cm}) + Xception at {size} px, median of {steps}:"
        );
        println!("                               fused       non-fused   non-fused / fused");
        let labels = [
            "generator forward",
            "generator + detector forward",
            "generator forward + backward",
            "forward + backward + update",
            "pivotal tuning step",
        ];
        for ((label, a), b) in labels.iter().zip(f).zip(n) {
            println!("  {label:<28} {a:>8.3} s  {b:>8.3} s  {:>6.2}×", b / a);
        }
    }
    Ok(())
}

//! `unforge bench`: the time of one search step and one pivotal tuning step.

use std::time::Instant;

use serde_json::json;
use unforge::error::Result;
use unforge::inversion::PivotalTuning;
use unforge::networks::stylegan2::Generator;
use unforge::readback::{block_on, read_vec};
use unforge::search::bench::StepBench;

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
    /// Xception's input side [default: the generator's size].
    #[arg(long)]
    detector_size: Option<usize>,
    /// Time the search step through a preview at this side against the full size (both
    /// non-fused), instead of the fused and non-fused forms.
    #[arg(long)]
    preview: Option<usize>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let BenchArgs { size, channel_multiplier: cm, steps, json, backend, detector_size, preview } = args;
    let (size, cm, steps, json) = (*size, *cm, *steps, *json);
    let device = open_backend(backend)?;
    let det_size = detector_size.unwrap_or(size);
    if preview.is_some_and(|p| p % det_size != 0 || p < det_size) {
        return Err(unforge::Error::config(format!("--detector-size {det_size} must divide the preview")));
    }
    let bench = StepBench::new(size, cm, det_size, &device)?;
    let (g, det, latent) = (&bench.generator, &bench.detector, &bench.latent);
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
        Ok([
            time(&|| sync(generator.synthesize(latent.clone()).reshape([-1])))?,
            time(&|| sync(det.p_fake(generator.synthesize(latent.clone()))))?,
            time(&|| {
                let w = latent.clone().autodiff().require_grad();
                let grads = generator.synthesize(w.clone()).mean().backward();
                sync(w.grad(&grads).expect("grad").reshape([-1]))
            })?,
            time(&|| block_on(bench.step(generator)))?,
        ])
    };
    if let Some(side) = *preview {
        return bench_preview(&parts, &shared, side, steps, json, (backend, size, cm, det_size));
    }
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
        let (a, ta) = (parts(g)?, tune(g)?);
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

/// The search step through a preview against the full size, interleaved, medians.
fn bench_preview(
    parts: &dyn Fn(&Generator) -> Result<[f64; 4]>,
    full: &Generator,
    side: usize,
    steps: usize,
    json: bool,
    (backend, size, cm, det_size): (&str, usize, usize, usize),
) -> Result<()> {
    let preview = full.clone().with_render_size(side)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..steps.max(1) + 1 {
        let (x, y) = (parts(full)?, parts(&preview)?);
        if i > 0 {
            a.push(x);
            b.push(y);
        }
    }
    let col = |runs: &[[f64; 4]], j: usize| median(runs.iter().map(|p| p[j]).collect());
    let names = ["generator_forward_s", "forward_s", "generator_backward_s", "step_s"];
    if json {
        let form = |runs: &[[f64; 4]]| {
            names
                .iter()
                .enumerate()
                .map(|(j, k)| (k.to_string(), json!(col(runs, j))))
                .collect::<serde_json::Map<_, _>>()
        };
        println!(
            "{}",
            json!({ "backend": backend, "size": size, "channel_multiplier": cm, "detector_size": det_size, "steps": steps, "full": form(&a), "preview": form(&b), "preview_size": side })
        );
        return Ok(());
    }
    println!(
        "one search step, {backend}, batch 1, generator {size} px (channel multiplier {cm}, non-fused) + Xception at {det_size} px, median of {steps}:"
    );
    println!("                               full        preview {side:<4} full / preview");
    let labels = [
        "generator forward",
        "generator + detector forward",
        "generator forward + backward",
        "forward + backward + update",
    ];
    for (j, label) in labels.iter().enumerate() {
        let (x, y) = (col(&a, j), col(&b, j));
        println!("  {label:<28} {x:>8.3} s  {y:>8.3} s  {:>6.2}×", x / y);
    }
    Ok(())
}

//! `unforge bench`: the time of one search step and one pivotal tuning step.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use unforge::error::Result;
use unforge::inversion::PivotalTuning;
use unforge::networks::stylegan2::Generator;
use unforge::precision::require_f32;
use unforge::readback::{block_on, read_vec};
use unforge::search::bench::{Probe, StepBench};

use crate::common::{DeviceArgs, io_err, write_atomic};

/// Times one search step: the rosinality generator (keyed weights) and Xception, forward
/// and backward to W+, batch 1, on `--backend`; and one pivotal tuning step against it.
/// Prints the median over `--steps`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    channel_multiplier: usize,
    /// Timed steps (0: only the probe of `--gradient-out` / `--gradient-against`).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
    /// Xception's input side [default: the generator's size].
    #[arg(long)]
    detector_size: Option<usize>,
    /// Also write the non-fused step's P(fake) and gradient to W+ here (JSON), to compare
    /// precisions or backends with `--gradient-against`.
    #[arg(long)]
    gradient_out: Option<PathBuf>,
    /// Print how far this run's P(fake) and gradient are from those a `--gradient-out` run
    /// wrote (the same sizes, another precision or backend).
    #[arg(long)]
    gradient_against: Option<PathBuf>,
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
    let BenchArgs {
        size,
        channel_multiplier: cm,
        steps,
        json,
        device,
        detector_size,
        gradient_out,
        gradient_against,
        preview,
    } = args;
    let (size, cm, steps, json) = (*size, *cm, *steps, *json);
    let (device_args, backend) = (device, &device.backend);
    let device = device_args.open()?;
    let det_size = detector_size.unwrap_or(size);
    let probing = gradient_out.is_some() || gradient_against.is_some();
    if steps == 0 && !probing {
        return Err(unforge::Error::config("--steps 0 times nothing: give --gradient-out or --gradient-against"));
    }
    if preview.is_some_and(|p| p % det_size != 0 || p < det_size) {
        return Err(unforge::Error::config(format!("--detector-size {det_size} must divide the preview")));
    }
    let bench = StepBench::new(size, cm, det_size, &device)?;
    let (g, det, latent) = (&bench.generator, &bench.detector, &bench.latent);
    let shared = g.clone().with_fused(false);
    if probing {
        let probe = block_on(bench.probe(&shared))?;
        if let Some(path) = gradient_out {
            let text = serde_json::to_string(&probe).map_err(|e| unforge::Error::config(e.to_string()))?;
            write_atomic(path, text.as_bytes())?;
        }
        if let Some(path) = gradient_against {
            let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
            let reference: Probe = serde_json::from_str(&text)
                .map_err(|e| unforge::Error::config(format!("{}: not a probe: {e}", path.display())))?;
            let d = probe.difference(&reference)?;
            println!(
                "{} against {}: P(fake) {:.6} vs {:.6} (|Δ| {:.2e}); gradient cosine {:.6}, signs agreeing {:.2} %, relative error {:.2e}",
                device_args.precision.name(),
                path.display(),
                probe.p_fake,
                reference.p_fake,
                d.p_fake,
                d.cosine,
                100.0 * d.sign_agreement,
                d.relative_error
            );
        }
        if steps == 0 {
            return Ok(());
        }
    }
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
    // Not in f16, where Adam diverges and tuning is refused (a NaN time, null in JSON).
    let tunes = require_f32(&device, "pivotal tuning").is_ok();
    let tune = |generator: &Generator| {
        if !tunes {
            return Ok(f64::NAN);
        }
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
            if a.is_nan() {
                println!("  {label:<28} not timed in f16 (Adam diverges there)");
                continue;
            }
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

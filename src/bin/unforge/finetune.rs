//! `unforge finetune`: the generator fine-tuned on a data set's faces, written as a new zoo.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use unforge::error::{Error, Result};
use unforge::metrics::Quality;
use unforge::readback::block_on;
use unforge::train::finetune::{GeneratorFinetuning, finetune_generator};
use unforge::weights::StoredPrecision;
use unforge::zoo::{Zoo, ZooFiles, network_tensors, read_dir};

use crate::checkpoint::{Checkpoint, checkpoints_dir};
use crate::common::{DeviceArgs, png_files, read_image, write_atomic};

/// Fine-tunes the zoo's generator on a folder of face crops (PNG) with the encoder frozen, as
/// the paper's pipeline does before any search (Artifact-Eraser's `finetune.sh`), and writes a
/// zoo whose generator is the tuned one. The last `--held-out` images are not trained on: the
/// reconstruction's PSNR, LPIPS and ID on them are reported before and after. Checkpoints go to
/// `OUT/checkpoints/`; `--resume` continues a stopped run.
#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// A folder of face crops (PNG, aligned as the zoo's faces are).
    data: PathBuf,
    #[arg(long, default_value = "models")]
    zoo: PathBuf,
    /// The new zoo's folder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Adam's step size.
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    #[arg(long, default_value_t = 1.0)]
    lambda_l2: f32,
    /// Needs a perceptual network (LPIPS) in the zoo.
    #[arg(long, default_value_t = 1.0)]
    lambda_lpips: f32,
    /// Needs an identity network (ArcFace) in the zoo.
    #[arg(long, default_value_t = 0.1)]
    lambda_id: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images kept out of training to measure on (default: a tenth, at least one of two or more).
    #[arg(long)]
    held_out: Option<usize>,
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Continue the run whose checkpoints are in `--out`.
    #[arg(long)]
    resume: bool,
    /// Store the tuned generator as f32 (default f16).
    #[arg(long)]
    f32: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: &FinetuneArgs) -> Result<()> {
    let config = GeneratorFinetuning {
        steps: args.steps,
        batch: args.batch,
        learning_rate: args.learning_rate,
        lambda_l2: args.lambda_l2,
        lambda_lpips: args.lambda_lpips,
        lambda_id: args.lambda_id,
        seed: args.seed,
    };
    if args.checkpoint_every == 0 {
        return Err(Error::config("--checkpoint-every must be at least 1"));
    }
    let device = args.device.open()?;
    let (manifest, files) = read_dir(&args.zoo)?;
    let zoo = Zoo::load(manifest.clone(), &files, &device)?;
    config.validate(&zoo)?;
    let paths = png_files(&args.data)?;
    let held = args.held_out.unwrap_or(if paths.len() >= 2 { (paths.len() / 10).max(1) } else { 0 });
    if held >= paths.len() {
        return Err(Error::config(format!(
            "{}: {} images, {held} held out: none left to train on",
            args.data.display(),
            paths.len()
        )));
    }
    let images = paths.iter().map(|p| read_image(p)).collect::<Result<Vec<_>>>()?;
    let (train, held_out) = images.split_at(images.len() - held);
    let dir = args.out.join("checkpoints");
    checkpoints_dir(&dir, args.resume)?;
    let entry = manifest.generator()?.clone();
    let weights = network_tensors(&entry, &files)?;
    let settings = json!({
        "zoo": manifest.name, "data": args.data.display().to_string(), "images": train.len(), "steps": config.steps,
        "batch": config.batch, "learning_rate": config.learning_rate, "lambda_l2": config.lambda_l2,
        "lambda_lpips": config.lambda_lpips, "lambda_id": config.lambda_id, "seed": config.seed,
    });
    let checkpoint = Checkpoint::new(&dir, "generator", settings.clone(), config.steps, args.checkpoint_every);
    let (tuned, losses, seconds) = checkpoint.stage(|resume, log| {
        finetune_generator(&zoo, weights, train, &config, resume, |s, snapshot| {
            let entry = json!({ "step": s.step, "loss": s.loss, "l2": s.l2, "lpips": s.lpips, "id": s.id });
            checkpoint.record(s.step, log, entry, format!("loss {:.5} (L2 {:.5})", s.loss, s.l2), snapshot)
        })
    })?;

    // The new zoo: the same networks, the tuned generator in place of the zoo's.
    let precision = if args.f32 { StoredPrecision::F32 } else { StoredPrecision::F16 };
    tuned.check_storable(precision, "the tuned generator")?;
    let mut new_manifest = manifest.clone();
    new_manifest.name = args.out.file_name().and_then(|n| n.to_str()).unwrap_or("finetuned").to_string();
    new_manifest.description = format!(
        "{} The generator is fine-tuned on {} ({} images, {} steps).",
        manifest.description,
        args.data.display(),
        train.len(),
        config.steps
    );
    let generator = new_manifest.networks.iter_mut().find(|n| n.name == entry.name).expect("the generator");
    generator.file = "generator-finetuned.safetensors".into();
    generator.prefix.clear();
    generator.shards.clear();
    let mut new_files = ZooFiles::new();
    new_files.insert(generator.file.clone(), tuned.to_safetensors(precision));
    for n in new_manifest.networks.iter().filter(|n| n.name != entry.name) {
        for f in n.stored_files() {
            new_files.insert(f.to_string(), files[f].clone());
        }
    }
    let tuned_zoo = Zoo::load(new_manifest.clone(), &new_files, &device)?;
    let before = held_out_quality(&zoo, held_out)?;
    let after = held_out_quality(&tuned_zoo, held_out)?;
    for (name, bytes) in &new_files {
        write_atomic(&args.out.join(name), bytes)?;
    }
    // The manifest last: a folder with a zoo.json is a whole zoo.
    write_atomic(&args.out.join("zoo.json"), new_manifest.to_json().as_bytes())?;
    let report = json!({
        "settings": settings, "held_out": held_out.len(), "seconds": seconds, "losses": losses,
        "before": before, "after": after,
    });
    let path = args.out.join("finetune-report.json");
    write_atomic(&path, serde_json::to_string_pretty(&report).expect("json").as_bytes())?;
    print_summary(&args.out, held_out.len(), &before, &after, &path);
    Ok(())
}

/// The mean PSNR, LPIPS and ID of the zoo's reconstructions of `images` against them.
fn held_out_quality(zoo: &Zoo, images: &[unforge::image::RgbaImage]) -> Result<Value> {
    let size = zoo.generator.size;
    let mut sums = [0f64; 3];
    let mut counts = [0usize; 3];
    for img in images {
        let reconstruction = zoo.inverter().invert(img, &zoo.device).reconstruction;
        let q: Quality = block_on(zoo.quality(img.to_tensor(size, &zoo.device), reconstruction))?;
        for (k, v) in [Some(q.psnr_db), q.lpips, q.id_similarity].into_iter().enumerate() {
            if let Some(v) = v {
                sums[k] += v;
                counts[k] += 1;
            }
        }
    }
    let mean = |k: usize| (counts[k] > 0).then(|| sums[k] / counts[k] as f64);
    Ok(json!({ "psnr_db": mean(0), "lpips": mean(1), "id_similarity": mean(2) }))
}

fn print_summary(out: &Path, held: usize, before: &Value, after: &Value, report: &Path) {
    let show = |v: &Value| v.as_f64().map_or("n/a".to_string(), |x| format!("{x:.4}"));
    println!("fine-tuned zoo written to {} (report: {})", out.display(), report.display());
    if held == 0 {
        println!("  no held-out images: nothing measured");
        return;
    }
    println!("  on {held} held-out images, before → after:");
    for (key, label) in [("psnr_db", "PSNR (dB)"), ("lpips", "LPIPS"), ("id_similarity", "ID similarity")] {
        println!("    {label:<14} {} → {}", show(&before[key]), show(&after[key]));
    }
}

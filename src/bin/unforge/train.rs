//! `unforge train`: the synthetic zoo's recipe. The inverter (generator + encoder) first, then
//! each detector on raw and reconstructed images, then the identity network, then the
//! test-split scores.
//!
//! Every stage saves a checkpoint under `OUT/checkpoints/` (weights plus a JSON with the next
//! step, the settings and the losses so far) every `--checkpoint-every` steps and when it ends;
//! `--resume` continues from there, skipping finished stages. A run never overwrites another
//! run's checkpoints: without `--resume` it refuses an `OUT` that holds some.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::{Value, json};
use unforge::error::{Error, Result};
use unforge::inversion::PivotalTuning;
use unforge::synth::ForgeryStrength;
use unforge::train::identity::{IdentityScores, IdentityTraining, train_identity};
use unforge::train::{
    DetectorTraining, InverterTraining, ReconstructionPool, Reconstructions, Reconstructor, Resume, join_inverter,
    split_inverter, train_detector, train_inverter,
};
use unforge::weights::{StoredPrecision, TensorFile};
use unforge::zoo::{Architecture, Domain, DomainKind, Manifest, NetworkEntry, Role, Zoo, ZooFiles};
use unforge::zoo_init::TinyZooSpec;

use crate::checkpoint::{Checkpoint, checkpoints_dir};
use crate::common::write;

/// Test images whose scores `card.json` keeps.
const CARD_IMAGES: u64 = 20;

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[arg(long, default_value = "models-trained")]
    pub out: PathBuf,
    /// Image side (the default zoo's architectures at this size).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    #[arg(long, default_value_t = 1500)]
    pub inverter_steps: usize,
    #[arg(long, default_value_t = 8)]
    pub inverter_batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub inverter_lr: f64,
    /// Then fine-tune the encoder alone this many steps, the generator frozen (the paper's
    /// encoder fine-tuning, its B.1), on the inverter trained above or taken by
    /// `--inverter-from`; 0: none.
    #[arg(long, default_value_t = 0)]
    pub encoder_steps: usize,
    /// The encoder's width (its backbone's channels times this; 1: the first zoos'). With
    /// `--inverter-from` a zoo whose encoder is another width, `--encoder-steps` trains a new
    /// encoder of this width against that zoo's generator, from seeded weights.
    #[arg(long, default_value_t = 1)]
    pub encoder_width: usize,
    /// The encoder fine-tuning's learning rate (warm-up and cosine decay, as every stage).
    #[arg(long, default_value_t = 1e-3)]
    pub encoder_lr: f64,
    /// Weight of e4e's delta regulariser (each W+ row's squared distance from row 0) in the
    /// inverter's and the encoder's training: higher keeps W+ near W, lower lets each layer's
    /// style hold more of the image.
    #[arg(long, default_value_t = 0.1)]
    pub delta_weight: f32,
    #[arg(long, default_value_t = 600)]
    pub detector_steps: usize,
    #[arg(long, default_value_t = 16)]
    pub detector_batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub detector_lr: f64,
    /// The detectors to train (xception, efficientnet, resnet); the zoo holds only these.
    /// Each one trains as it would beside the others (same seed, same images).
    #[arg(long, value_delimiter = ',', default_value = "xception,efficientnet,resnet")]
    pub detectors: Vec<String>,
    /// Share of each detector batch shown reconstructed by the trained inverter.
    #[arg(long, default_value_t = 0.5)]
    pub reconstructed_share: f32,
    /// Weight of the detectors' location loss (their head at every feature position against
    /// the ground-truth forgery mask); 0 trains on image labels alone.
    #[arg(long, default_value_t = 1.0)]
    pub location_weight: f32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The synthetic world's forgery strengths (`visible`, the default zoo's world: the
    /// forgeries made visible at 64 px, or `subtle`, the world's first strengths; see the
    /// model card); recorded in the zoo's manifest.
    #[arg(long, default_value = "visible", value_parser = ForgeryStrength::preset)]
    pub forgeries: ForgeryStrength,
    /// Steps of the identity network (ArcFace's IR-SE, two shots of each person per batch,
    /// batch-contrastive loss); 0 leaves it out of the zoo.
    #[arg(long, default_value_t = 1500)]
    pub identity_steps: usize,
    /// People per identity batch (two shots each).
    #[arg(long, default_value_t = 16)]
    pub identity_batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub identity_lr: f64,
    /// Test-split images scored at the end (and people for the identity network's scores).
    #[arg(long, default_value_t = 200)]
    pub test_images: u64,
    /// Pivotal tuning steps the zoo's manifest recommends to its searches (0: none). 200 raise
    /// the 64 px zoo's reconstructions from 23 to 31 dB PSNR; its encoder alone drops the
    /// forgeries' traces.
    #[arg(long, default_value_t = 200)]
    pub recommended_tune_steps: usize,
    /// Pivot refinement steps the zoo's manifest recommends to its searches (0: the encoder's
    /// code is the pivot): W+ optimisation before any tuning.
    #[arg(long, default_value_t = 0)]
    pub recommended_pivot_steps: usize,
    /// Take the generator and encoder from this zoo (trained with the same `--size`) instead of
    /// training them.
    #[arg(long)]
    pub inverter_from: Option<PathBuf>,
    /// Start each detector from this zoo's detector of the same name (trained with the same
    /// `--size`) instead of seeded weights: a fine-tuning run, with the full schedule.
    #[arg(long)]
    pub detectors_from: Option<PathBuf>,
    /// Show the detectors reconstructions made as a search makes them (W+ refinement, pivotal
    /// tuning) instead of plain ones: a pool of this many train-split pairs (a forged face and
    /// its pristine capture), made once and kept with the checkpoints. 0: plain
    /// reconstructions, made afresh for every batch.
    #[arg(long, default_value_t = 0)]
    pub pool_pairs: usize,
    /// Pivot refinement steps for each image of the pool (Adam on W+ from the encoder's code,
    /// the generator fixed; a batch of pairs at a time), as `--pivot-steps` in a search.
    #[arg(long, default_value_t = 0)]
    pub pool_pivot_steps: usize,
    /// Pivotal tuning steps for each image of the pool (its own tuned copy of the generator,
    /// from its pivot), as `--tune-steps` in a search.
    #[arg(long, default_value_t = 0)]
    pub pool_tune_steps: usize,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Continue the run whose checkpoints are in `--out`.
    #[arg(long)]
    pub resume: bool,
}

/// The strengths in a checkpoint's settings: by preset name (`--forgeries` takes only presets),
/// since f32 values compared after a JSON round trip through f64 can differ in the last digit.
fn forgeries_name(strength: &ForgeryStrength) -> &'static str {
    strength.name().unwrap_or("custom")
}

/// The weights of `theirs`, a network of the zoo in `dir` (whose files are `files`), taken by
/// `flag` when `fits` (it is this recipe's architecture).
fn take_network(
    flag: &str,
    dir: &std::path::Path,
    files: &ZooFiles,
    theirs: &NetworkEntry,
    fits: bool,
) -> Result<TensorFile> {
    if !fits {
        return Err(Error::config(format!(
            "{flag} {}: its `{}` is not this recipe's (same --size and architecture needed)",
            dir.display(),
            theirs.name
        )));
    }
    unforge::zoo::network_tensors(theirs, files).map_err(|e| Error::config(format!("{flag} {}: {e}", dir.display())))
}

/// The generator and encoder of the zoo in `dir`, which must be this recipe's architectures;
/// with `new_encoder` (an encoder is to be trained), an encoder of another width gives way to
/// a seeded one of this recipe's.
fn inverter_from(dir: &std::path::Path, spec: &TinyZooSpec, new_encoder: bool) -> Result<(TensorFile, TensorFile)> {
    let (manifest, files) = unforge::zoo::read_dir(dir)?;
    let take = |entry: &NetworkEntry, want: Architecture| {
        take_network("--inverter-from", dir, &files, entry, entry.architecture == want)
    };
    let generator = take(manifest.generator()?, Architecture::Stylegan2(spec.generator()))?;
    let theirs = manifest.encoder()?;
    if new_encoder && theirs.architecture != Architecture::E4e(spec.encoder()) {
        return Ok((generator, unforge::train::seeded_encoder(&spec.encoder(), spec.seed)?));
    }
    Ok((generator, take(theirs, Architecture::E4e(spec.encoder()))?))
}

/// The detector of the zoo in `dir` that `entry` names, which must be this recipe's architecture.
fn detector_from(dir: &std::path::Path, entry: &NetworkEntry) -> Result<TensorFile> {
    let (manifest, files) = unforge::zoo::read_dir(dir)?;
    let theirs = manifest.detectors().find(|d| d.name == entry.name).ok_or_else(|| {
        Error::config(format!("--detectors-from {}: the zoo has no detector `{}`", dir.display(), entry.name))
    })?;
    let fits = theirs.architecture == entry.architecture && theirs.input_size == entry.input_size;
    take_network("--detectors-from", dir, &files, theirs, fits)
}

/// What the stages of one run share: the settings, the checkpoints' folder, the zoo's
/// recipe, and what each stage adds to the zoo and its report.
struct Recipe<'a> {
    args: &'a TrainArgs,
    dir: PathBuf,
    spec: TinyZooSpec,
    report: serde_json::Map<String, Value>,
    files: ZooFiles,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let (recommended, pool_inversion) = check(args)?;
    let out = &args.out;
    let dir = out.join("checkpoints");
    checkpoints_dir(&dir, args.resume)?;
    // No perceptual network: LPIPS's weights come from human judgements of image pairs, which
    // the synthetic world does not have.
    let spec = TinyZooSpec {
        size: args.size,
        seed: args.seed,
        encoder_width: args.encoder_width,
        precision: StoredPrecision::F16,
        ..TinyZooSpec::default()
    };
    let mut manifest = spec.manifest();
    let all: Vec<String> = manifest.detectors().map(|d| d.name.clone()).collect();
    if let Some(unknown) = args.detectors.iter().find(|d| !all.contains(d)) {
        return Err(Error::config(format!("--detectors: no detector `{unknown}` (use {})", all.join(", "))));
    }
    if args.detectors.is_empty() {
        return Err(Error::config(format!("--detectors: name at least one of {}", all.join(", "))));
    }
    if args.identity_steps > 0 {
        manifest.networks.push(spec.identity_entry());
    }
    manifest.name = "synthetic-trained".into();
    manifest.pivotal_tuning = recommended.active();
    manifest.description =
        format!("Trained by `unforge train` on the synthetic face world ({} px, seed {}).", args.size, args.seed);
    manifest.domain = Some(Domain {
        kind: DomainKind::Synthetic,
        trained_on: format!(
            "synthetic faces of Unforge's procedural world ({} px, {} forgeries), never photographs",
            args.size,
            forgeries_name(&args.forgeries)
        ),
        forgeries: Some(args.forgeries),
    });
    let started = Instant::now();
    let mut recipe = Recipe { args, dir, spec, report: serde_json::Map::new(), files: ZooFiles::new() };

    // A detector's seed is its place among all of them, so training it alone gives the same weights.
    let chosen: Vec<_> =
        manifest.detectors().cloned().enumerate().filter(|(_, d)| args.detectors.contains(&d.name)).collect();
    manifest.networks.retain(|n| n.role != Role::Detector || args.detectors.contains(&n.name));
    // Read before any stage trains, so a bad zoo fails at once.
    let starts = chosen
        .iter()
        .map(|(_, entry)| args.detectors_from.as_ref().map(|zoo| detector_from(zoo, entry)).transpose())
        .collect::<Result<Vec<_>>>()?;
    let reconstructor = recipe.inverter()?;
    let pool = recipe.pool(&reconstructor, &pool_inversion)?;
    let reconstructions = match &pool {
        Some(p) => Reconstructions::Pool(p),
        None => Reconstructions::Inverted(&reconstructor),
    };
    for ((i, entry), start) in chosen.into_iter().zip(starts) {
        recipe.detector(i, &entry, reconstructions, pool.is_some(), start)?;
    }
    if args.identity_steps > 0 {
        recipe.identity()?;
    }
    recipe.finish(manifest, started)
}

/// Every flag checked before the first stage trains: the recommended tuning, and the pool's
/// inversion.
fn check(args: &TrainArgs) -> Result<(PivotalTuning, PivotalTuning)> {
    if !(32..=256).contains(&args.size) || !args.size.is_power_of_two() {
        return Err(Error::config(format!("--size {}: use a power of two from 32 to 256", args.size)));
    }
    if args.checkpoint_every == 0 {
        return Err(Error::config("--checkpoint-every must be at least 1"));
    }
    detector_config(args, 0).validate()?;
    let recommended = PivotalTuning::steps(args.recommended_tune_steps).with_pivot_steps(args.recommended_pivot_steps);
    recommended.validate().map_err(|e| Error::config(format!("--recommended-tune-steps: {e}")))?;
    let pool_inversion = PivotalTuning::steps(args.pool_tune_steps).with_pivot_steps(args.pool_pivot_steps);
    if args.pool_pairs > 0 {
        pool_inversion.pivot.validate().map_err(|e| Error::config(format!("--pool-pivot-steps: {e}")))?;
        pool_inversion.validate().map_err(|e| Error::config(format!("--pool-tune-steps: {e}")))?;
        if pool_inversion.active().is_none() {
            return Err(Error::config("--pool-pairs: a pool needs --pool-pivot-steps or --pool-tune-steps"));
        }
        if detector_config(args, 0).reconstructed_pairs() == 0 {
            return Err(Error::config(format!(
                "--pool-pairs: the pool replaces the reconstructed share of each batch, and --reconstructed-share {} of {} images is no whole pair",
                args.reconstructed_share, args.detector_batch
            )));
        }
    }
    if args.identity_steps > 0 {
        identity_config(args).validate()?;
    }
    if !(1..=8).contains(&args.encoder_width) {
        return Err(Error::config(format!("--encoder-width {}: use 1 to 8", args.encoder_width)));
    }
    if args.encoder_steps > 0 && !(args.encoder_lr.is_finite() && args.encoder_lr > 0.0) {
        return Err(Error::config(format!("--encoder-lr must be positive, got {}", args.encoder_lr)));
    }
    if !(args.delta_weight.is_finite() && args.delta_weight >= 0.0) {
        return Err(Error::config(format!("--delta-weight must be a number ≥ 0, got {}", args.delta_weight)));
    }
    Ok((recommended, pool_inversion))
}

/// The `i`-th detector's training settings.
fn detector_config(args: &TrainArgs, i: usize) -> DetectorTraining {
    DetectorTraining {
        steps: args.detector_steps,
        batch: args.detector_batch,
        learning_rate: args.detector_lr,
        seed: args.seed ^ 0xDE7 ^ ((i as u64) << 8),
        first_index: 0,
        reconstructed_share: args.reconstructed_share,
        location_weight: args.location_weight,
        distinct_pairs: None,
        forgeries: args.forgeries,
    }
}

fn identity_config(args: &TrainArgs) -> IdentityTraining {
    IdentityTraining {
        steps: args.identity_steps,
        identities: args.identity_batch,
        learning_rate: args.identity_lr,
        seed: args.seed ^ 0x1D,
        image_size: args.size,
        temperature: 0.1,
    }
}

impl Recipe<'_> {
    /// Where the inverter came from, for what is made through it (the pool, the detectors).
    fn inverter_origin(&self) -> Value {
        self.args.inverter_from.as_ref().map_or(json!("trained"), |p| json!(p.display().to_string()))
    }

    /// Stage 1: the generator and the encoder, trained or taken from a zoo.
    fn inverter(&mut self) -> Result<Reconstructor> {
        let (args, spec) = (self.args, &self.spec);
        let (g, e) = match &args.inverter_from {
            Some(zoo) => {
                let (g, e) = inverter_from(zoo, spec, args.encoder_steps > 0)?;
                self.report.insert("inverter".into(), json!({ "from": zoo.display().to_string() }));
                (g, e)
            }
            None => {
                let cfg = InverterTraining {
                    steps: args.inverter_steps,
                    batch: args.inverter_batch,
                    learning_rate: args.inverter_lr,
                    seed: args.seed,
                    first_index: 0,
                    delta_weight: args.delta_weight,
                    forgeries: args.forgeries,
                    train_generator: true,
                };
                let mut settings = json!({ "size": args.size, "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "seed": cfg.seed, "forgeries": forgeries_name(&cfg.forgeries) });
                // Named only when changed, so that earlier runs' checkpoints still resume.
                if cfg.delta_weight != 0.1 {
                    settings["delta_weight"] = json!(cfg.delta_weight);
                }
                let ckpt = Checkpoint::new(&self.dir, "inverter", settings, cfg.steps, args.checkpoint_every);
                let (joined, log, seconds) = ckpt.stage(|resume, log| {
                    let (g, e) = train_inverter(&spec.generator(), &spec.encoder(), &cfg, resume, |s, snapshot| {
                        let line =
                            format!("pixel {:.4}  multiscale {:.4}  delta {:.4}", s.pixel, s.multiscale, s.delta);
                        ckpt.record(s.step, log, json!([s.pixel, s.multiscale, s.delta]), line, snapshot)
                    })?;
                    Ok(join_inverter(&g, &e))
                })?;
                let entry = json!({ "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "seconds": seconds, "losses": log });
                self.report.insert("inverter".into(), entry);
                split_inverter(joined)
            }
        };
        let (g, e) = self.encoder(g, e)?;
        self.files.insert("generator.safetensors".into(), g.to_safetensors(StoredPrecision::F16));
        self.files.insert("encoder.safetensors".into(), e.to_safetensors(StoredPrecision::F16));
        Reconstructor::new((&self.spec.generator(), g), (&self.spec.encoder(), e))
    }

    /// Stage 1b, when asked for: the encoder fine-tuned alone against the frozen generator
    /// `g`, from `e`. Returns the generator unchanged and the fine-tuned encoder.
    fn encoder(&mut self, g: TensorFile, e: TensorFile) -> Result<(TensorFile, TensorFile)> {
        let (args, spec) = (self.args, &self.spec);
        if args.encoder_steps == 0 {
            return Ok((g, e));
        }
        let cfg = InverterTraining {
            steps: args.encoder_steps,
            batch: args.inverter_batch,
            learning_rate: args.encoder_lr,
            seed: args.seed,
            // Images the joint stage did not see.
            first_index: (args.inverter_steps * args.inverter_batch) as u64,
            delta_weight: args.delta_weight,
            forgeries: args.forgeries,
            train_generator: false,
        };
        let settings = json!({ "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "first_image": cfg.first_index, "delta_weight": cfg.delta_weight, "width": args.encoder_width, "inverter": self.inverter_origin(), "forgeries": forgeries_name(&cfg.forgeries) });
        let ckpt = Checkpoint::new(&self.dir, "encoder", settings, cfg.steps, args.checkpoint_every);
        let start = join_inverter(&g, &e);
        let (joined, log, seconds) = ckpt.stage(|resume, log| {
            let resume = resume.unwrap_or(Resume { step: 0, weights: start });
            let (g, e) = train_inverter(&spec.generator(), &spec.encoder(), &cfg, Some(resume), |s, snapshot| {
                // The images are new at every step, so this PSNR is a held-out one ([-1, 1]: range 2).
                let psnr = unforge::metrics::psnr_of_mse(s.pixel as f64, 2.0);
                let line = format!("pixel {:.4} ({psnr:.2} dB)  delta {:.4}", s.pixel, s.delta);
                ckpt.record(s.step, log, json!([s.pixel, s.multiscale, s.delta]), line, snapshot)
            })?;
            Ok(join_inverter(&g, &e))
        })?;
        let entry = json!({ "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "delta_weight": cfg.delta_weight, "width": args.encoder_width, "generator": "frozen", "seconds": seconds, "losses": log });
        self.report.insert("encoder".into(), entry);
        let (_, e) = split_inverter(joined);
        Ok((g, e))
    }

    /// Stage 2, when asked for: the pool of reconstructions the detectors see. A stage like the
    /// others: a step per pair, saved every tenth of `--checkpoint-every` pairs (a pair is
    /// about as long as a hundred training steps when tuned).
    fn pool(&mut self, reconstructor: &Reconstructor, tuning: &PivotalTuning) -> Result<Option<ReconstructionPool>> {
        let args = self.args;
        if args.pool_pairs == 0 {
            return Ok(None);
        }
        let settings = json!({ "pairs": args.pool_pairs, "size": args.size, "tuning": tuning, "inverter": self.inverter_origin(), "forgeries": forgeries_name(&args.forgeries) });
        let ckpt = Checkpoint::new(&self.dir, "pool", settings, args.pool_pairs, (args.checkpoint_every / 10).max(1));
        let (file, _, seconds) = ckpt.stage(|resume, log| {
            let line = format!("{} pivot and {} tuning steps per image", tuning.pivot.steps, tuning.steps);
            let pool = ReconstructionPool::make(
                reconstructor,
                0..args.pool_pairs as u64,
                args.size,
                &args.forgeries,
                tuning,
                resume,
                |p, snapshot| ckpt.record(p, log, Value::Null, line.clone(), snapshot),
            )?;
            Ok(pool.to_file())
        })?;
        let entry = json!({ "pairs": args.pool_pairs, "pivot_steps": tuning.pivot.steps, "tuning_steps": tuning.steps, "seconds": seconds });
        self.report.insert("pool".into(), entry);
        Ok(Some(ReconstructionPool::from_file(&file)?))
    }

    /// Stage 3: the `i`-th detector of the recipe, on raw and reconstructed pairs, from `start`
    /// (another zoo's weights) or seeded weights.
    fn detector(
        &mut self,
        i: usize,
        entry: &NetworkEntry,
        reconstructions: Reconstructions,
        pooled: bool,
        start: Option<TensorFile>,
    ) -> Result<()> {
        let args = self.args;
        let cfg = detector_config(args, i);
        let mut settings = json!({ "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "seed": cfg.seed, "reconstructed_share": cfg.reconstructed_share, "location_weight": cfg.location_weight, "forgeries": forgeries_name(&cfg.forgeries) });
        if pooled {
            settings["pool_pairs"] = json!(args.pool_pairs);
            settings["pool_pivot_steps"] = json!(args.pool_pivot_steps);
            settings["pool_tune_steps"] = json!(args.pool_tune_steps);
        }
        if args.inverter_from.is_some() {
            settings["inverter"] = self.inverter_origin();
        }
        if let Some(zoo) = &args.detectors_from {
            settings["from"] = json!(zoo.display().to_string());
        }
        let ckpt = Checkpoint::new(&self.dir, &entry.name, settings, cfg.steps, args.checkpoint_every);
        let (weights, log, seconds) = ckpt.stage(|resume, log| {
            let resume = resume.or(start.map(|weights| Resume { step: 0, weights }));
            train_detector(entry, &cfg, resume, Some(reconstructions), |s, snapshot| {
                let line = format!("loss {:.4}  accuracy {:.2}", s.loss, s.accuracy);
                ckpt.record(s.step, log, json!([s.loss, s.accuracy]), line, snapshot)
            })
        })?;
        let family = match entry.architecture {
            Architecture::Xception(_) => "xception",
            Architecture::Efficientnet(_) => "efficientnet",
            Architecture::Resnet(_) => "resnet",
            _ => "other",
        };
        let report = json!({ "family": family, "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.learning_rate, "seconds": seconds, "losses": log });
        self.report.insert(entry.name.clone(), report);
        self.files.insert(entry.file.clone(), weights.to_safetensors(StoredPrecision::F16));
        Ok(())
    }

    /// Stage 4: the identity network, on shots of the same people.
    fn identity(&mut self) -> Result<()> {
        let identity = identity_config(self.args);
        let settings = json!({ "steps": identity.steps, "people": identity.identities, "lr": identity.learning_rate, "seed": identity.seed, "size": identity.image_size });
        let ckpt = Checkpoint::new(&self.dir, "arcface", settings, identity.steps, self.args.checkpoint_every);
        let (weights, log, seconds) = ckpt.stage(|resume, log| {
            train_identity(&self.spec.arcface(), &identity, resume, |s, snapshot| {
                let line = format!("loss {:.4}  accuracy {:.2}", s.loss, s.accuracy);
                ckpt.record(s.step, log, json!([s.loss, s.accuracy]), line, snapshot)
            })
        })?;
        let report = json!({ "steps": identity.steps, "people": identity.identities, "lr": identity.learning_rate, "seconds": seconds, "losses": log });
        self.report.insert("arcface".into(), report);
        self.files.insert(self.spec.identity_entry().file, weights.to_safetensors(StoredPrecision::F16));
        Ok(())
    }

    /// The zoo, its test scores, the report and the card.
    fn finish(mut self, manifest: Manifest, started: Instant) -> Result<()> {
        let (args, out) = (self.args, &self.args.out);
        for (name, bytes) in &self.files {
            write(&out.join(name), bytes)?;
        }
        write(&out.join("zoo.json"), manifest.to_json().as_bytes())?;
        let device = burn::tensor::Device::flex();
        let zoo = Zoo::load(manifest, &self.files, &device)?;
        let scores = unforge::train::test_scores(&zoo, args.size, &args.forgeries, args.test_images)?;
        self.report.insert("test".into(), serde_json::to_value(&scores).expect("json"));
        // Measured on the network as the zoo ships it (f16), like the detectors' scores.
        let identity_scores = zoo
            .identity
            .as_ref()
            .map(|net| IdentityScores::measure(net, args.test_images.max(2), args.size, &device))
            .transpose()?;
        if let (Some(s), Some(entry)) = (&identity_scores, self.report.get_mut("arcface")) {
            entry["test"] = serde_json::to_value(s).expect("json");
        }
        self.report.insert("seconds_this_session".into(), json!(started.elapsed().as_secs_f64()));
        write(&out.join("train-report.json"), serde_json::to_string_pretty(&self.report).expect("json").as_bytes())?;
        // The card's reference scores: what loading this zoo must reproduce on the first test images.
        let card = unforge::train::test_scores(&zoo, args.size, &args.forgeries, CARD_IMAGES.min(args.test_images))?;
        write(&out.join("card.json"), serde_json::to_string_pretty(&card).expect("json").as_bytes())?;
        print!("{}", unforge::eval::markdown(&scores.tables()));
        if let Some(s) = identity_scores {
            println!(
                "\n### Identity network\n\nTwo shots each of {} test-split people: cosine similarity of one person's shots against two people's.\n",
                s.people
            );
            println!(
                "| same person (mean) | different people (mean) | verification AUC |\n|---|---|---|\n| {:.3} | {:.3} | {:.3} |",
                s.genuine_mean, s.impostor_mean, s.verification_auc
            );
        }
        eprintln!("trained in {:.1} min; zoo in {}", started.elapsed().as_secs_f64() / 60.0, out.display());
        Ok(())
    }
}

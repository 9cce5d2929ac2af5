//! `unforge eval`: the experiments of `unforge::eval` over a folder, with a progress line,
//! resumable records and tables rewritten after every run.
//!
//! Every record is written to a temporary file and renamed into place, and the tables are
//! rebuilt from the records after each run the same way, so an interrupted run (Ctrl-C) leaves
//! only complete records and tables that match them; the next run skips what is done.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use unforge::error::{Error, Result};
use unforge::eval::{
    EvalPlan, Experiment, ImageScore, Record, Table, Trial, ZooScores, markdown, pixel_attacks, run_one, tables,
};
use unforge::explanation::{Face, TruthMask};
use unforge::image::{RgbaImage, Square};
use unforge::inversion::{Inversion, PivotalTuning};
use unforge::options::{SearchOptions, ZooDefaults};
use unforge::readback::block_on;
use unforge::search::Level;
use unforge::zoo::Zoo;

use crate::common::{DeviceArgs, io_err, load_zoo, mkdir, png_files, read_image, write_atomic};

/// Runs the paper's experiments over a folder of face images and writes Markdown, CSV and
/// JSON tables (Tab. 1 quality, Tab. 2/3 transfer, Tab. 4 levels, Tab. 5 α, ASR vs steps).
/// A re-run with the same --out skips the images already done.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A folder of PNG face crops. An optional labels.json ({"name.png": "fake" | "real"})
    /// restricts the attacks to the fakes.
    data: PathBuf,
    #[arg(long, default_value = "models")]
    zoo: PathBuf,
    /// Victim detectors, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    victims: Vec<String>,
    /// Attacks, comma-separated: latent, fgsm, ifgsm, pgd, mifgsm.
    #[arg(long, value_delimiter = ',', default_value = "latent,fgsm,pgd,mifgsm")]
    attacks: Vec<String>,
    #[command(flatten)]
    search: SearchOptions,
    /// Pixel attacks' budget ε, in /255 units.
    #[arg(long, default_value_t = 8.0)]
    eps: f32,
    /// Pixel attacks' step, in /255 units.
    #[arg(long, default_value_t = 2.0)]
    pixel_alpha: f32,
    #[arg(long, default_value_t = 10)]
    pixel_steps: usize,
    /// Tab. 4: also run the S, M and D levels alone.
    #[arg(long)]
    level_ablation: bool,
    /// Tab. 5: also run these step sizes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    alphas: Vec<f32>,
    /// ASR against steps for the paper and fast presets.
    #[arg(long)]
    curve: bool,
    /// ID retention threshold on the ArcFace cosine.
    #[arg(long, default_value_t = 0.5)]
    id_threshold: f64,
    /// Use only the first N images (sorted by name; the fakes when labels.json says which).
    #[arg(long)]
    limit: Option<usize>,
    /// Runs the searches only: no zoo scores on the labelled images ("Detectors before the
    /// search", "Inversion"), which invert every labelled image, whatever --limit.
    #[arg(long)]
    searches_only: bool,
    /// Runs only the K-th of N parts of the images (K/N, 1 ≤ K ≤ N), so that N machines fill
    /// one --out folder together (a job array); then `--tables-only` adds the records up.
    #[arg(long)]
    shard: Option<Shard>,
    /// Runs nothing: rebuilds the tables from the records in --out (after the shards).
    #[arg(long)]
    tables_only: bool,
    #[command(flatten)]
    device: DeviceArgs,
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
}

/// One of N deterministic parts of a run: the images whose place in the sorted list is K − 1
/// modulo N. An image's searches stay together, so its inversion is made once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    k: usize,
    n: usize,
}

impl Shard {
    fn takes(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }

    fn name(&self) -> String {
        format!("shard-{}-of-{}", self.k, self.n)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::config(format!("--shard `{s}`: use K/N with 1 ≤ K ≤ N (e.g. 2/8)"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if k == 0 || k > n { Err(bad()) } else { Ok(Self { k, n }) }
    }
}

/// `labels.json` of `data`, when it has one: image name → fake.
fn read_labels(data: &Path) -> Result<Option<BTreeMap<String, bool>>> {
    let labels_path = data.join("labels.json");
    if !labels_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&labels_path).map_err(|e| io_err(&labels_path, e))?;
    let labels: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        Error::config(format!("{}: {e} (expected {{\"name.png\": \"fake\" | \"real\"}})", labels_path.display()))
    })?;
    if let Some((name, label)) = labels.iter().find(|(_, l)| *l != "fake" && *l != "real") {
        return Err(Error::config(format!(
            "{}: `{name}` is labelled `{label}`, not fake or real",
            labels_path.display()
        )));
    }
    Ok(Some(labels.into_iter().map(|(name, label)| (name, label == "fake")).collect()))
}

/// The PNGs of `data` (sorted), restricted to the fakes when labels.json says which they are.
fn list_images(data: &Path, limit: Option<usize>) -> Result<Vec<PathBuf>> {
    let mut images = png_files(data)?;
    if let Some(labels) = read_labels(data)? {
        images.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| labels.get(n) == Some(&true)));
    }
    if let Some(n) = limit {
        images.truncate(n);
    }
    if images.is_empty() {
        return Err(Error::config(format!("{}: no PNG images to attack", data.display())));
    }
    Ok(images)
}

/// The zoo's scores before any search on every labelled image of `data` that exists (all of
/// them, whatever `--limit`), when there are real and fake ones. Kept in `zoo-scores.json`
/// with the zoo and the images they are for, so a resumed run does not redo them. An image the
/// run searches is scored from the inversion its searches use (one pivotal tuning per image,
/// not two); the others after the searches.
struct ZooScoring {
    key: serde_json::Value,
    path: PathBuf,
    /// A shard scores its part of the labelled images and saves them apart, for
    /// `--tables-only` to join.
    shard: Option<Shard>,
    labelled: usize,
    /// Labelled images not scored yet, with their forgery kind (`None`: real).
    pending: BTreeMap<String, Option<String>>,
    scored: BTreeMap<String, ImageScore>,
    scores: Option<ZooScores>,
}

impl ZooScoring {
    fn open(
        data: &Path,
        kinds: &BTreeMap<String, String>,
        zoo: &Zoo,
        tuning: &PivotalTuning,
        out: &Path,
        shard: Option<Shard>,
    ) -> Result<Option<Self>> {
        let Some(mut labels) = read_labels(data)? else { return Ok(None) };
        labels.retain(|name, _| data.join(name).is_file());
        if !(labels.values().any(|f| *f) && labels.values().any(|f| !*f)) {
            return Ok(None);
        }
        let key = serde_json::json!({ "zoo": zoo.manifest.to_json(), "labels": labels, "pivotal_tuning": tuning });
        let path = out.join("zoo-scores.json");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(saved) = serde_json::from_str::<serde_json::Value>(&text)
            && saved["for"] == key
            && let Ok(scores) = serde_json::from_value::<ZooScores>(saved["scores"].clone())
        {
            return Ok(Some(Self {
                key,
                path,
                shard,
                labelled: labels.len(),
                pending: BTreeMap::new(),
                scored: BTreeMap::new(),
                scores: Some(scores),
            }));
        }
        // Images scored before a stop are kept (`zoo-scores.partial.json`), like the records.
        let labelled = labels.len();
        let partial = Self::partial(&path, shard);
        let scored = Self::saved_scores(&partial, &key);
        if let Some(shard) = shard {
            let mut index = 0..;
            labels.retain(|_, _| shard.takes(index.next().expect("endless")));
        }
        eprintln!(
            "scoring the zoo on {} labelled images ({} from an earlier run; those searched as their searches invert them)",
            labels.len(),
            scored.len()
        );
        let pending = labels.into_iter().filter(|(name, _)| !scored.contains_key(name)).map(|(name, fake)| {
            let kind = fake.then(|| kinds.get(&name).cloned().unwrap_or_else(|| "fake".into()));
            (name, kind)
        });
        Ok(Some(Self { key, path, shard, labelled, pending: pending.collect(), scored, scores: None }))
    }

    fn partial(path: &Path, shard: Option<Shard>) -> PathBuf {
        path.with_extension(shard.map_or("partial.json".into(), |s| format!("{}.json", s.name())))
    }

    /// The images scored in a saved part, when it is for these settings.
    fn saved_scores(path: &Path, key: &serde_json::Value) -> BTreeMap<String, ImageScore> {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter(|saved| &saved["for"] == key)
            .and_then(|saved| serde_json::from_value(saved["scored"].clone()).ok())
            .unwrap_or_default()
    }

    /// After the shards: every part's scores joined, when together they cover every image.
    fn join_shards(&mut self, zoo: &Zoo, tuning: &PivotalTuning) -> Result<Vec<Table>> {
        if self.scores.is_none() {
            let dir = self.path.parent().expect("out folder");
            let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("zoo-scores.") && name != "zoo-scores.json" {
                    self.scored.extend(Self::saved_scores(&entry.path(), &self.key));
                }
            }
            if self.scored.len() < self.labelled {
                eprintln!(
                    "zoo scores: {} of {} labelled images scored by the shards; the zoo's tables are left out",
                    self.scored.len(),
                    self.labelled
                );
                return Ok(Vec::new());
            }
            let scores = ZooScores::from_images(zoo, std::mem::take(&mut self.scored).into_values(), tuning);
            self.save(scores)?;
        }
        Ok(self.scores.as_ref().map(|s| s.tables()).unwrap_or_default())
    }

    fn save(&mut self, scores: ZooScores) -> Result<()> {
        let saved = serde_json::json!({ "for": self.key, "scores": scores });
        write_atomic(&self.path, serde_json::to_string_pretty(&saved).expect("json").as_bytes())?;
        let _ = std::fs::remove_file(Self::partial(&self.path, None));
        self.scores = Some(scores);
        Ok(())
    }

    fn wants(&self, name: &str) -> bool {
        self.pending.contains_key(name)
    }

    fn add(&mut self, zoo: &Zoo, name: &str, image: &RgbaImage, inversion: &Inversion) -> Result<()> {
        if let Some(kind) = self.pending.remove(name) {
            self.scored.insert(name.to_string(), block_on(ImageScore::measure(zoo, image, kind, inversion))?);
            let saved = serde_json::json!({ "for": self.key, "scored": self.scored });
            write_atomic(
                &Self::partial(&self.path, self.shard),
                serde_json::to_string(&saved).expect("json").as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Scores the images left, saves the scores and returns their tables.
    fn finish(&mut self, data: &Path, zoo: &Zoo, tuning: &PivotalTuning) -> Result<Vec<Table>> {
        if self.scores.is_none() {
            eprintln!(
                "zoo scores: {} of {} labelled images scored before the searches ended (from their inversions, or in an earlier run)",
                self.scored.len(),
                self.scored.len() + self.pending.len()
            );
            for name in self.pending.keys().cloned().collect::<Vec<_>>() {
                let image = read_image(&data.join(&name))?;
                let inversion = block_on(zoo.inverter().invert_tuned(&image, tuning, &zoo.device, &mut |_| {}))?;
                self.add(zoo, &name, &image, &inversion)?;
            }
            if self.shard.is_some() {
                return Ok(Vec::new());
            }
            let scores = ZooScores::from_images(zoo, std::mem::take(&mut self.scored).into_values(), tuning);
            self.save(scores)?;
        }
        Ok(self.scores.as_ref().map(|s| s.tables()).unwrap_or_default())
    }
}

/// Each fake's forgery kind, when DATA says (`unforge synth` writes them to `samples.json`).
fn read_kinds(data: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(data.join("samples.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
        .map(|v| {
            v.iter()
                .filter_map(|s| Some((s["image"].as_str()?.to_string(), s["forgery"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The face of `image` (its centred square) with its ground-truth mask, when DATA has one in
/// `masks/` (as `unforge synth` writes).
fn face_in(data: &Path, name: &str, image: &RgbaImage, zoo: &Zoo) -> Result<Face> {
    let path = data.join("masks").join(name);
    let mask = match path.exists() {
        true => Some(TruthMask { image: read_image(&path)?, origin: path.display().to_string() }),
        false => None,
    };
    Face::with_mask(image, &Square::centred(image.width, image.height), mask.as_ref(), zoo.generator.size)
}

fn eta(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s / 60 % 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

/// How far a run has come, for its progress line.
struct Tally {
    total: usize,
    done: usize,
    /// Resumed from an earlier run's records.
    skipped: usize,
    /// Run this time.
    ran: usize,
    started: Instant,
}

impl Tally {
    fn show(&self, what: &str) {
        let Tally { total, done, skipped, ran, started } = self;
        let width = 28;
        let filled = (done * width).checked_div(*total).unwrap_or(width);
        let per = if *ran == 0 { 0.0 } else { started.elapsed().as_secs_f64() / *ran as f64 };
        let left = per * (total - done) as f64;
        eprint!(
            "\r[{}{}] {done}/{total} (skipped {skipped})  ETA {}  {what:<40}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            eta(left)
        );
        let _ = std::io::stderr().flush();
    }
}

/// What the tables of a run are made of besides its records.
struct TableContext<'a> {
    zoo_tables: Vec<Table>,
    detectors: Vec<String>,
    experiments: &'a [Experiment],
    id_threshold: f64,
    kinds: &'a BTreeMap<String, String>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    // Every flag is checked before any work starts.
    let (data, out) = (args.data.as_path(), args.out.as_path());
    let config = args.search.config(ZooDefaults::default())?;
    if args.search.rows.is_some() {
        return Err(Error::config(
            "--rows: eval's experiments move levels (--levels, --level-ablation); explicit rows are for `unforge run`",
        ));
    }
    let levels: Vec<Level> =
        args.search.levels.as_deref().unwrap_or("full").split(',').map(|l| l.trim().parse()).collect::<Result<_>>()?;
    let (latent, pixel) = attacks(args, config.seed)?;
    for &alpha in &args.alphas {
        unforge::search::SearchConfig { alpha, ..config.clone() }.validate()?;
    }
    if args.shard.is_some() && args.tables_only {
        return Err(Error::config("--shard runs a part, --tables-only runs nothing: give one of them"));
    }
    let images = list_images(data, args.limit)?;
    let device = args.device.open()?;
    let zoo = load_zoo(&args.zoo, &device)?;
    let (plan, experiments) = plan(args, &zoo, levels, pixel, latent)?;
    let detectors = zoo.detector_names();
    let victims = if args.victims.is_empty() { detectors.clone() } else { args.victims.clone() };
    for v in &victims {
        zoo.detector(v)?;
    }

    mkdir(out)?;
    write_plan(out, &experiments)?;
    let kinds = read_kinds(data);
    let tuning = plan.search.pivotal_tuning;
    let mut scoring =
        if args.searches_only { None } else { ZooScoring::open(data, &kinds, &zoo, &tuning, out, args.shard)? };
    // Saved scores are shown from the start; new ones once every labelled image is scored.
    let zoo_tables = scoring.as_ref().and_then(|s| s.scores.as_ref()).map(|s| s.tables()).unwrap_or_default();
    let mut context = TableContext {
        zoo_tables,
        detectors,
        experiments: &experiments,
        id_threshold: plan.id_threshold,
        kinds: &kinds,
    };
    let trials = Trials { args, zoo: &zoo, victims: &victims, experiments: &experiments, tuning };
    if args.tables_only {
        let (records, missing) = trials.saved(&images);
        if let Some(s) = scoring.as_mut() {
            context.zoo_tables = s.join_shards(&zoo, &tuning)?;
        }
        write_tables(out, &context, &records)?;
        print!("{}", std::fs::read_to_string(out.join("tables.md")).map_err(|e| io_err(out, e))?);
        eprintln!("tables from {} records in {} ({missing} not run yet)", records.len(), out.display());
        return Ok(());
    }
    let mine: Vec<&PathBuf> =
        images.iter().enumerate().filter(|(i, _)| args.shard.is_none_or(|s| s.takes(*i))).map(|(_, p)| p).collect();
    let (records, tally) = trials.run(&mine, &mut scoring, &context)?;
    if let Some(s) = scoring.as_mut() {
        context.zoo_tables = s.finish(data, &zoo, &tuning)?;
    }
    let (ran, skipped) = (tally.ran, tally.skipped);
    if let Some(shard) = args.shard {
        // The tables are the whole run's: `--tables-only` makes them once every shard is done.
        eprintln!("{}: {ran} runs, {skipped} resumed; then `--tables-only` into {}", shard.name(), out.display());
        return Ok(());
    }
    write_tables(out, &context, &records)?;
    print!("{}", std::fs::read_to_string(out.join("tables.md")).map_err(|e| io_err(out, e))?);
    eprintln!("{ran} runs, {skipped} resumed from {}; tables in {}", out.join("records").display(), out.display());
    Ok(())
}

/// The (image, victim, experiment) trials of a run, and where their records live.
struct Trials<'a> {
    args: &'a EvalArgs,
    zoo: &'a Zoo,
    victims: &'a [String],
    experiments: &'a [Experiment],
    tuning: PivotalTuning,
}

impl Trials<'_> {
    fn record_path(&self, image: &Path, victim: &str, tag: &str) -> PathBuf {
        let stem = image.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        self.args.out.join("records").join(victim).join(tag).join(format!("{stem}.json"))
    }

    fn read_record(path: &Path) -> Option<Record> {
        std::fs::read_to_string(path).ok().and_then(|text| serde_json::from_str::<Record>(&text).ok())
    }

    /// The records already written for `images`, in the order one run makes them (the same
    /// tables, to the last digit), and how many are missing.
    fn saved(&self, images: &[PathBuf]) -> (Vec<Record>, usize) {
        let (mut records, mut missing) = (Vec::new(), 0);
        for image_path in images {
            for victim in self.victims {
                for experiment in self.experiments {
                    match Self::read_record(&self.record_path(image_path, victim, experiment.tag())) {
                        Some(record) => records.push(record),
                        None => missing += 1,
                    }
                }
            }
        }
        (records, missing)
    }

    /// Runs every trial of `images` that has no record yet (and takes up those that have),
    /// rewriting the tables after each unless this is a shard.
    fn run(
        &self,
        images: &[&PathBuf],
        scoring: &mut Option<ZooScoring>,
        context: &TableContext,
    ) -> Result<(Vec<Record>, Tally)> {
        let (zoo, args) = (self.zoo, self.args);
        let total = images.len() * self.victims.len() * self.experiments.len();
        let mut tally = Tally { total, done: 0, skipped: 0, ran: 0, started: Instant::now() };
        let mut records: Vec<Record> = Vec::new();
        for image_path in images {
            let mut face: Option<(RgbaImage, Face)> = None;
            // One inversion (and pivotal tuning) per image, made when a latent search first needs
            // it and shared by the image's searches.
            let mut inversion: Option<Inversion> = None;
            for victim in self.victims {
                for experiment in self.experiments {
                    let path = self.record_path(image_path, victim, experiment.tag());
                    if let Some(record) = Self::read_record(&path) {
                        records.push(record);
                        tally.done += 1;
                        tally.skipped += 1;
                        continue;
                    }
                    let name = image_path.file_name().and_then(|n| n.to_str()).unwrap_or("image").to_string();
                    tally.show(&format!("{name} · {victim} · {}", experiment.tag()));
                    if face.is_none() {
                        let img = read_image(image_path)?;
                        let cut = face_in(&args.data, &name, &img, zoo)?;
                        face = Some((img, cut));
                    }
                    let (img, cut) = face.as_ref().expect("just read");
                    if experiment.is_latent() && inversion.is_none() {
                        let inverter = zoo.inverter();
                        let made = block_on(inverter.invert_tuned(&cut.crop, &self.tuning, &zoo.device, &mut |_| {}))?;
                        if let Some(s) = scoring.as_mut().filter(|s| s.wants(&name)) {
                            s.add(zoo, &name, img, &made)?;
                        }
                        inversion = Some(made);
                    }
                    let trial = Trial { image: &name, victim, experiment };
                    let record = block_on(run_one(zoo, cut, inversion.as_ref(), &trial))?;
                    mkdir(path.parent().expect("record folder"))?;
                    write_atomic(&path, serde_json::to_string_pretty(&record).expect("json").as_bytes())?;
                    records.push(record);
                    tally.done += 1;
                    tally.ran += 1;
                    if args.shard.is_none() {
                        write_tables(&args.out, context, &records)?;
                    }
                }
            }
        }
        tally.show("done");
        eprintln!();
        Ok((records, tally))
    }
}

/// Whether `--attacks` asks for the latent search, and its pixel baselines.
fn attacks(args: &EvalArgs, seed: u64) -> Result<(bool, Vec<unforge::search::PixelAttack>)> {
    let mut pixel_names = Vec::new();
    let mut latent = false;
    for a in &args.attacks {
        match a.as_str() {
            "latent" => latent = true,
            other => pixel_names.push(other),
        }
    }
    let pixel = pixel_attacks(&pixel_names, args.eps, args.pixel_alpha, args.pixel_steps, args.search.mu(), seed)?;
    Ok((latent, pixel))
}

/// The plan over `zoo`'s defaults, and the experiments it runs.
fn plan(
    args: &EvalArgs,
    zoo: &Zoo,
    levels: Vec<Level>,
    pixel: Vec<unforge::search::PixelAttack>,
    latent: bool,
) -> Result<(EvalPlan, Vec<Experiment>)> {
    let plan = EvalPlan {
        search: args.search.config(ZooDefaults::of(zoo))?,
        levels,
        pixel,
        level_ablation: args.level_ablation,
        alphas: args.alphas.clone(),
        curve: args.curve,
        id_threshold: args.id_threshold,
        identity_network: zoo.identity.is_some(),
    };
    let mut experiments = plan.experiments();
    if !latent {
        experiments.retain(|e| !matches!(e, Experiment::Latent { tag, .. } if tag == "latent"));
    }
    if experiments.is_empty() {
        return Err(Error::config("--attacks selects nothing to run"));
    }
    Ok((plan, experiments))
}

/// Records `experiments` in `plan.json`, with those of earlier runs into the same folder. An
/// experiment whose settings differ from an earlier run's under the same name is refused: its
/// records there would be resumed as if they were this run's.
fn write_plan(out: &Path, experiments: &[Experiment]) -> Result<()> {
    let path = out.join("plan.json");
    let mut plan: Vec<Experiment> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::config(format!("{}: not a plan this unforge can read ({e}); use another --out", path.display()))
        })?,
        Err(_) => Vec::new(),
    };
    for e in experiments {
        match plan.iter().find(|p| p.tag() == e.tag()) {
            Some(earlier) if earlier != e => {
                return Err(Error::config(format!(
                    "{}: `{}` was run there with other settings (see plan.json); use another --out, or remove the folder to start again",
                    out.display(),
                    e.tag()
                )));
            }
            Some(_) => {}
            None => plan.push(e.clone()),
        }
    }
    write_atomic(&path, serde_json::to_string_pretty(&plan).expect("json").as_bytes())
}

/// Writes the zoo's tables, then those of the records.
fn write_tables(out: &Path, context: &TableContext, records: &[Record]) -> Result<()> {
    let TableContext { zoo_tables, detectors, experiments, id_threshold, kinds } = context;
    let of_records = tables(records, detectors, experiments, *id_threshold, kinds);
    let tables: Vec<Table> = zoo_tables.iter().cloned().chain(of_records).collect();
    write_atomic(&out.join("tables.md"), markdown(&tables).as_bytes())?;
    write_atomic(&out.join("tables.json"), serde_json::to_string_pretty(&tables).expect("json").as_bytes())?;
    for t in &tables {
        let slug: String =
            t.name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let slug = slug.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        write_atomic(&out.join(format!("{slug}.csv")), t.csv().as_bytes())?;
    }
    Ok(())
}

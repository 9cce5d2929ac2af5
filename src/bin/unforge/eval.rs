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
use unforge::inversion::{Inversion, PivotalTuning};
use unforge::eval::{markdown, pixel_attacks, run_one, tables, EvalPlan, Experiment, GroundTruth, ImageScore, Record, Table, ZooScores};
use unforge::image::RgbaImage;

use super::{load_zoo, mkdir, read_image, read_truth, write, SearchArgs};

/// The `eval` flags besides the search settings.
pub struct EvalArgs {
    pub victims: Vec<String>,
    pub attacks: Vec<String>,
    pub eps: f32,
    pub pixel_alpha: f32,
    pub pixel_steps: usize,
    pub level_ablation: bool,
    pub alphas: Vec<f32>,
    pub curve: bool,
    pub id_threshold: f64,
    pub limit: Option<usize>,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// `labels.json` of `data`, when it has one: image name → fake.
fn read_labels(data: &Path) -> Result<Option<BTreeMap<String, bool>>> {
    let labels_path = data.join("labels.json");
    if !labels_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&labels_path).map_err(|e| io_err(&labels_path, e))?;
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| Error::config(format!("{}: {e} (expected {{\"name.png\": \"fake\" | \"real\"}})", labels_path.display())))?;
    if let Some((name, label)) = labels.iter().find(|(_, l)| *l != "fake" && *l != "real") {
        return Err(Error::config(format!("{}: `{name}` is labelled `{label}`, not fake or real", labels_path.display())));
    }
    Ok(Some(labels.into_iter().map(|(name, label)| (name, label == "fake")).collect()))
}

/// The PNGs of `data` (sorted), restricted to the fakes when labels.json says which they are.
fn list_images(data: &Path, limit: Option<usize>) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(data).map_err(|e| io_err(data, e))?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    images.sort();
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
    /// Labelled images not scored yet, with their forgery kind (`None`: real).
    pending: BTreeMap<String, Option<String>>,
    scored: BTreeMap<String, ImageScore>,
    scores: Option<ZooScores>,
}

impl ZooScoring {
    fn open(data: &Path, kinds: &BTreeMap<String, String>, zoo: &unforge::zoo::Zoo, tuning: &PivotalTuning, out: &Path) -> Result<Option<Self>> {
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
            return Ok(Some(Self { key, path, pending: BTreeMap::new(), scored: BTreeMap::new(), scores: Some(scores) }));
        }
        // Images scored before a stop are kept (`zoo-scores.partial.json`), like the records.
        let scored: BTreeMap<String, ImageScore> = std::fs::read_to_string(Self::partial(&path))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter(|saved| saved["for"] == key)
            .and_then(|saved| serde_json::from_value(saved["scored"].clone()).ok())
            .unwrap_or_default();
        eprintln!("scoring the zoo on {} labelled images ({} from an earlier run; those searched as their searches invert them)", labels.len(), scored.len());
        let pending = labels.into_iter().filter(|(name, _)| !scored.contains_key(name)).map(|(name, fake)| {
            let kind = fake.then(|| kinds.get(&name).cloned().unwrap_or_else(|| "fake".into()));
            (name, kind)
        });
        Ok(Some(Self { key, path, pending: pending.collect(), scored, scores: None }))
    }

    fn partial(path: &Path) -> PathBuf {
        path.with_extension("partial.json")
    }

    fn wants(&self, name: &str) -> bool {
        self.pending.contains_key(name)
    }

    fn add(&mut self, zoo: &unforge::zoo::Zoo, name: &str, image: &RgbaImage, inversion: &Inversion, device: &burn::tensor::Device) -> Result<()> {
        if let Some(kind) = self.pending.remove(name) {
            self.scored.insert(name.to_string(), unforge::block_on(ImageScore::measure(zoo, image, kind, inversion, device))?);
            let saved = serde_json::json!({ "for": self.key, "scored": self.scored });
            write_atomic(&Self::partial(&self.path), serde_json::to_string(&saved).expect("json").as_bytes())?;
        }
        Ok(())
    }

    /// Scores the images left, saves the scores and returns their tables.
    fn finish(&mut self, data: &Path, zoo: &unforge::zoo::Zoo, tuning: &PivotalTuning, device: &burn::tensor::Device) -> Result<Vec<Table>> {
        if self.scores.is_none() {
            eprintln!("zoo scores: {} of {} labelled images scored before the searches ended (from their inversions, or in an earlier run)", self.scored.len(), self.scored.len() + self.pending.len());
            for name in self.pending.keys().cloned().collect::<Vec<_>>() {
                let image = read_image(&data.join(&name))?;
                let inversion = unforge::block_on(zoo.invert_tuned(&image, tuning, device, &mut |_| {}))?;
                self.add(zoo, &name, &image, &inversion, device)?;
            }
            let scores = ZooScores::from_images(zoo, std::mem::take(&mut self.scored).into_values(), tuning);
            let saved = serde_json::json!({ "for": self.key, "scores": scores });
            write_atomic(&self.path, serde_json::to_string_pretty(&saved).expect("json").as_bytes())?;
            let _ = std::fs::remove_file(Self::partial(&self.path));
            self.scores = Some(scores);
        }
        Ok(self.scores.as_ref().map(|s| s.tables()).unwrap_or_default())
    }
}

/// Each fake's forgery kind, when DATA says (`unforge synth` writes them to `samples.json`).
fn read_kinds(data: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(data.join("samples.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
        .map(|v| v.iter().filter_map(|s| Some((s["image"].as_str()?.to_string(), s["forgery"].as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// The ground-truth mask of `image`, when DATA has one in `masks/` (as `unforge synth` writes).
fn truth_in(data: &Path, name: &str, image: &RgbaImage) -> Result<Option<GroundTruth>> {
    let path = data.join("masks").join(name);
    path.exists().then(|| read_truth(&path, image)).transpose()
}

fn eta(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s / 60 % 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

fn progress(done: usize, total: usize, skipped: usize, started: Instant, ran: usize, what: &str) {
    let width = 28;
    let filled = if total == 0 { width } else { done * width / total };
    let per = if ran == 0 { 0.0 } else { started.elapsed().as_secs_f64() / ran as f64 };
    let left = per * (total - done) as f64;
    eprint!("\r[{}{}] {done}/{total} (skipped {skipped})  ETA {}  {what:<40}", "#".repeat(filled), "-".repeat(width - filled), eta(left));
    let _ = std::io::stderr().flush();
}

pub fn run(data: &Path, zoo_dir: &Path, search: &SearchArgs, args: EvalArgs, out: &Path) -> Result<()> {
    // Every flag is checked before any work starts.
    let config = search.config()?;
    let levels = search.levels()?;
    let mut pixel_names = Vec::new();
    let mut latent = false;
    for a in &args.attacks {
        match a.as_str() {
            "latent" => latent = true,
            other => pixel_names.push(other),
        }
    }
    let pixel = pixel_attacks(&pixel_names, args.eps, args.pixel_alpha, args.pixel_steps, search.mu, search.seed)?;
    for &alpha in &args.alphas {
        unforge::search::SearchConfig { alpha, ..config.clone() }.validate()?;
    }
    let images = list_images(data, args.limit)?;
    let device = search.device()?;
    let zoo = load_zoo(zoo_dir, &device)?;
    let config = search.for_zoo(config, &zoo);
    let plan = EvalPlan { search: config, levels, pixel, level_ablation: args.level_ablation, alphas: args.alphas, curve: args.curve, id_threshold: args.id_threshold, identity_network: zoo.identity.is_some() };
    let mut experiments = plan.experiments();
    if !latent {
        experiments.retain(|e| !matches!(e, Experiment::Latent { tag, .. } if tag == "latent"));
    }
    if experiments.is_empty() {
        return Err(Error::config("--attacks selects nothing to run"));
    }
    let detectors: Vec<String> = zoo.detectors.iter().map(|(n, _)| n.clone()).collect();
    let victims = if args.victims.is_empty() { detectors.clone() } else { args.victims.clone() };
    for v in &victims {
        zoo.detector(v)?;
    }

    mkdir(out)?;
    write_plan(out, &experiments)?;
    let kinds = read_kinds(data);
    let mut scoring = ZooScoring::open(data, &kinds, &zoo, &plan.search.pivotal_tuning, out)?;
    // Saved scores are shown from the start; new ones once every labelled image is scored.
    let mut zoo_tables = scoring.as_ref().and_then(|s| s.scores.as_ref()).map(|s| s.tables()).unwrap_or_default();
    let record_path = |image: &Path, victim: &str, tag: &str| {
        let stem = image.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        out.join("records").join(victim).join(tag).join(format!("{stem}.json"))
    };
    let total = images.len() * victims.len() * experiments.len();
    let (mut done, mut skipped, mut ran) = (0usize, 0usize, 0usize);
    let mut records: Vec<Record> = Vec::new();
    let started = Instant::now();
    for image_path in &images {
        let mut image: Option<(RgbaImage, Option<GroundTruth>)> = None;
        // One inversion (and pivotal tuning) per image, made when a latent search first needs
        // it and shared by the image's searches.
        let mut inversion: Option<Inversion> = None;
        for victim in &victims {
            for experiment in &experiments {
                let path = record_path(image_path, victim, experiment.tag());
                if let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(record) = serde_json::from_str::<Record>(&text)
                {
                    records.push(record);
                    done += 1;
                    skipped += 1;
                    continue;
                }
                let name = image_path.file_name().and_then(|n| n.to_str()).unwrap_or("image").to_string();
                progress(done, total, skipped, started, ran, &format!("{name} · {victim} · {}", experiment.tag()));
                if image.is_none() {
                    let img = read_image(image_path)?;
                    let truth = truth_in(data, &name, &img)?;
                    image = Some((img, truth));
                }
                let (img, truth) = image.as_ref().expect("just read");
                if experiment.is_latent() && inversion.is_none() {
                    let made = unforge::block_on(zoo.invert_tuned(img, &plan.search.pivotal_tuning, &device, &mut |_| {}))?;
                    if let Some(s) = scoring.as_mut().filter(|s| s.wants(&name)) {
                        s.add(&zoo, &name, img, &made, &device)?;
                    }
                    inversion = Some(made);
                }
                let record = unforge::block_on(run_one(&zoo, img, inversion.as_ref(), &name, victim, experiment, truth.as_ref(), &device))?;
                mkdir(path.parent().expect("record folder"))?;
                write_atomic(&path, serde_json::to_string_pretty(&record).expect("json").as_bytes())?;
                records.push(record);
                done += 1;
                ran += 1;
                write_tables(out, &zoo_tables, &records, &detectors, &experiments, plan.id_threshold, &kinds)?;
            }
        }
    }
    progress(done, total, skipped, started, ran, "done");
    eprintln!();
    if let Some(s) = scoring.as_mut() {
        zoo_tables = s.finish(data, &zoo, &plan.search.pivotal_tuning, &device)?;
    }
    write_tables(out, &zoo_tables, &records, &detectors, &experiments, plan.id_threshold, &kinds)?;
    print!("{}", std::fs::read_to_string(out.join("tables.md")).map_err(|e| io_err(out, e))?);
    eprintln!("{ran} runs, {skipped} resumed from {}; tables in {}", out.join("records").display(), out.display());
    Ok(())
}

/// Records `experiments` in `plan.json`, with those of earlier runs into the same folder. An
/// experiment whose settings differ from an earlier run's under the same name is refused: its
/// records there would be resumed as if they were this run's.
fn write_plan(out: &Path, experiments: &[Experiment]) -> Result<()> {
    let path = out.join("plan.json");
    let mut plan: Vec<Experiment> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::config(format!("{}: not a plan this unforge can read ({e}); use another --out", path.display())))?,
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
#[allow(clippy::too_many_arguments)]
fn write_tables(out: &Path, zoo_tables: &[Table], records: &[Record], detectors: &[String], experiments: &[Experiment], id_threshold: f64, kinds: &BTreeMap<String, String>) -> Result<()> {
    let tables: Vec<Table> = zoo_tables.iter().cloned().chain(tables(records, detectors, experiments, id_threshold, kinds)).collect();
    write_atomic(&out.join("tables.md"), markdown(&tables).as_bytes())?;
    write_atomic(&out.join("tables.json"), serde_json::to_string_pretty(&tables).expect("json").as_bytes())?;
    for t in &tables {
        let slug: String = t.name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let slug = slug.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        write_atomic(&out.join(format!("{slug}.csv")), t.csv().as_bytes())?;
    }
    Ok(())
}

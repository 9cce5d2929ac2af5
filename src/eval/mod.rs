//! The paper's experiments over a set of images: what each run records, and the tables
//! (Tab. 1 quality, Tab. 2/3 transfer, Tab. 4 levels, Tab. 5 α, and ASR against steps) that
//! the records add up to. File handling (resume, output folders) belongs to the front.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::image::RgbaImage;
use crate::explain::{Cam, CamMethod, CamTarget, ResidualMap};
use crate::metrics::{auroc, downsample_mask};
use crate::inversion::{Inversion, PivotalTuning};
use crate::pipeline::{explain_inverted, read_planar, Counterfactual, Live, Quality};
use crate::search::{Level, PixelAttack, PixelMethod, Preset, RowMask, SearchConfig};
use crate::zoo::Zoo;

/// One attack setting of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Experiment {
    /// The latent search with these settings and levels.
    Latent { tag: String, levels: Vec<Level>, config: SearchConfig },
    /// An image-space baseline.
    Pixel { tag: String, attack: PixelAttack },
}

impl Experiment {
    /// Its name in tables and folders (`latent`, `latent-M`, `latent-alpha-0.0008`, `pgd`, …).
    pub fn tag(&self) -> &str {
        match self {
            Experiment::Latent { tag, .. } | Experiment::Pixel { tag, .. } => tag,
        }
    }

    pub fn is_latent(&self) -> bool {
        matches!(self, Experiment::Latent { .. })
    }
}

/// The experiments a CLI invocation asks for.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// The main latent search (Tab. 1-3).
    pub search: SearchConfig,
    pub levels: Vec<Level>,
    /// Pixel baselines by name (`fgsm`, `ifgsm`, `pgd`, `mifgsm`) with their budget.
    pub pixel: Vec<PixelAttack>,
    /// Tab. 4: the S, M and D levels alone (full is the main run when its levels are full).
    pub level_ablation: bool,
    /// Tab. 5: these step sizes with the main settings.
    pub alphas: Vec<f32>,
    /// ASR against steps for the paper and fast presets (full mask).
    pub curve: bool,
    /// ID retention counts an image whose ArcFace cosine is at least this.
    pub id_threshold: f64,
    /// Whether the zoo has an identity network (the fast preset's curve then holds identity).
    pub identity_network: bool,
}

impl EvalPlan {
    pub fn experiments(&self) -> Vec<Experiment> {
        let levels_tag = |levels: &[Level]| levels.iter().map(|l| level_letter(*l)).collect::<Vec<_>>().join("");
        let mut out = vec![Experiment::Latent { tag: "latent".into(), levels: self.levels.clone(), config: self.search.clone() }];
        for attack in &self.pixel {
            out.push(Experiment::Pixel { tag: attack.method.name().into(), attack: attack.clone() });
        }
        if self.level_ablation {
            for level in [Level::Shallow, Level::Middle, Level::Deep, Level::Full] {
                if self.levels == [level] {
                    continue;
                }
                out.push(Experiment::Latent { tag: format!("latent-{}", levels_tag(&[level])), levels: vec![level], config: self.search.clone() });
            }
        }
        for &alpha in &self.alphas {
            if alpha == self.search.alpha {
                continue;
            }
            let config = SearchConfig { alpha, ..self.search.clone() };
            out.push(Experiment::Latent { tag: format!("latent-alpha-{alpha}"), levels: self.levels.clone(), config });
        }
        if self.curve {
            for preset in [Preset::Paper, Preset::Fast] {
                let tag = format!("preset-{}", serde_json::to_value(preset).expect("preset").as_str().expect("name"));
                // Both presets start from the plan's inversion (its pivotal tuning included).
                let config = SearchConfig { pivotal_tuning: self.search.pivotal_tuning, ..preset.config_with_identity(self.identity_network) };
                out.push(Experiment::Latent { tag, levels: vec![Level::Full], config });
            }
        }
        out
    }
}

fn level_letter(level: Level) -> &'static str {
    match level {
        Level::Shallow => "S",
        Level::Middle => "M",
        Level::Deep => "D",
        Level::Full => "full",
    }
}

/// What one (image, victim, experiment) run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub image: String,
    pub victim: String,
    pub experiment: String,
    /// The victim's P(fake) on what it attacked (reconstruction, or input for pixel attacks).
    pub p_fake_before: f32,
    pub p_fake_after: f32,
    /// The victim called it fake before the attack: only these count towards ASR.
    pub detected_before: bool,
    /// The victim's goal was met (κ rule for the latent search, P(fake) < 0.5 for pixels).
    pub success: bool,
    pub steps: usize,
    /// The first step at whose latent the goal held (latent search only).
    pub first_success_step: Option<usize>,
    /// Every detector's P(fake) after the attack.
    pub after: BTreeMap<String, f32>,
    pub quality: Quality,
    /// How well the change (and the victim's CAM difference) finds the ground-truth mask,
    /// when the image has one.
    #[serde(default)]
    pub localisation: Option<Localisation>,
    pub seconds: f64,
}

/// The pixels a forgery altered, as a square mask of any size (resampled to the generator's).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub side: usize,
    pub altered: Vec<bool>,
}

impl GroundTruth {
    /// From a mask image: altered where the first channel is above half.
    pub fn from_image(mask: &RgbaImage) -> Result<Self> {
        if mask.width != mask.height {
            return Err(crate::error::Error::config(format!("a ground-truth mask must be square, this one is {}×{}", mask.width, mask.height)));
        }
        Ok(Self { side: mask.width, altered: mask.data.chunks(4).map(|p| p[0] > 127).collect() })
    }

    /// The forgery mask of `image` from a mask picture of the same size, cropped to the centre
    /// square as the search crops the image.
    pub fn for_image(mask: &RgbaImage, image: &RgbaImage) -> Result<Self> {
        if (mask.width, mask.height) != (image.width, image.height) {
            return Err(crate::error::Error::config(format!("the mask is {}×{}, the image {}×{}", mask.width, mask.height, image.width, image.height)));
        }
        Self::from_image(&mask.center_square())
    }

    /// The mask on the generator's `size` × `size` grid: a cell is altered where any of its
    /// pixels is; a mask smaller than the grid is sampled at each cell's position.
    pub fn at(&self, size: usize) -> Vec<bool> {
        if self.side >= size {
            return downsample_mask(&self.altered, self.side, size);
        }
        (0..size * size).map(|i| self.altered[(i / size * self.side / size) * self.side + i % size * self.side / size]).collect()
    }
}

/// AUROCs against the ground-truth mask (`None` where the mask, on the generator's grid, is
/// empty or covers everything, or where the attack has no such map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Localisation {
    /// The change itself: the residual magnitude (latent) or the perturbation's (pixels).
    pub change_auroc: Option<f64>,
    /// The victim's Grad-CAM for "fake", reconstruction minus counterfactual (latent only).
    pub cam_auroc: Option<f64>,
}

impl Localisation {
    /// How well a counterfactual's residual, and the drop of the victim's Grad-CAM for "fake"
    /// from reconstruction to counterfactual (`cams`: input, reconstruction, counterfactual),
    /// point at the altered cells of `mask` (the generator's grid).
    pub fn of_counterfactual(result: &Counterfactual, cams: &[Cam; 3], mask: &[bool]) -> Self {
        let cam_drop: Vec<f32> = cams[1].values.iter().zip(&cams[2].values).map(|(a, b)| a - b).collect();
        Self { change_auroc: auroc(&result.residual.magnitude(), mask), cam_auroc: auroc(&cam_drop, mask) }
    }
}

/// Runs one experiment on one image against one victim.
/// `inversion`: the image's inversion, when the caller made it once for several experiments;
/// a latent experiment whose pivotal tuning differs (or with none given) makes its own.
#[allow(clippy::too_many_arguments)]
pub async fn run_one(zoo: &Zoo, image: &RgbaImage, inversion: Option<&Inversion>, name: &str, victim: &str, experiment: &Experiment, truth: Option<&GroundTruth>, device: &Device) -> Result<Record> {
    let start = web_time_now();
    let names: Vec<String> = zoo.detectors.iter().map(|(n, _)| n.clone()).collect();
    let size = zoo.generator.size;
    let truth = truth.map(|t| t.at(size));
    let mut record = match experiment {
        Experiment::Latent { levels, config, .. } => {
            let mask = RowMask::from_levels(levels, &zoo.manifest.levels, zoo.manifest.n_latent)?;
            let made;
            let inversion = match inversion {
                Some(inversion) if inversion.made_with(&config.pivotal_tuning) => inversion,
                _ => {
                    made = zoo.invert_tuned(image, &config.pivotal_tuning, device, &mut |_| {}).await?;
                    &made
                }
            };
            let r = explain_inverted(zoo, image, inversion, victim, &mask, config, Live::default(), device, |_, _| {}).await?;
            let first_success_step = r.history.iter().find(|s| !s.active[0]).map(|s| s.step);
            let localisation = match &truth {
                Some(mask) => {
                    let maps = crate::pipeline::cams(zoo, &r, CamMethod::GradCam, &CamTarget::fake(), device).await?;
                    Some(Localisation::of_counterfactual(&r, &maps, mask))
                }
                None => None,
            };
            Record {
                image: name.into(),
                victim: victim.into(),
                experiment: experiment.tag().into(),
                p_fake_before: r.p_fake_reconstruction,
                p_fake_after: r.p_fake_counterfactual,
                detected_before: r.p_fake_reconstruction >= 0.5,
                success: r.success,
                steps: r.steps,
                first_success_step,
                after: r.scores.iter().map(|s| (s.detector.clone(), s.counterfactual)).collect(),
                quality: r.quality,
                localisation,
                seconds: 0.0,
            }
        }
        Experiment::Pixel { attack, .. } => {
            let det = zoo.detector(victim)?;
            let input = image.center_square().resize(size, size).to_tensor(size, device);
            let adversarial = attack.run(det, input.clone())?;
            let before = zoo.score_all(input.clone()).await?;
            let after = zoo.score_all(adversarial.clone()).await?;
            let v = names.iter().position(|n| n == victim).expect("victim exists");
            let steps = if attack.method == PixelMethod::Fgsm { 1 } else { attack.steps };
            Record {
                image: name.into(),
                victim: victim.into(),
                experiment: experiment.tag().into(),
                p_fake_before: before[v],
                p_fake_after: after[v],
                detected_before: before[v] >= 0.5,
                success: after[v] < 0.5,
                steps,
                first_success_step: None,
                after: names.iter().cloned().zip(after).collect(),
                localisation: match &truth {
                    Some(mask) => {
                        let (a, b) = (read_planar(input.clone()).await?.remove(0), read_planar(adversarial.clone()).await?.remove(0));
                        Some(Localisation { change_auroc: auroc(&ResidualMap::new(&a, &b, size, size).magnitude(), mask), cam_auroc: None })
                    }
                    None => None,
                },
                quality: zoo.quality(input, adversarial).await?,
                seconds: 0.0,
            }
        }
    };
    record.seconds = web_time_now() - start;
    Ok(record)
}

#[cfg(not(target_arch = "wasm32"))]
fn web_time_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(target_arch = "wasm32")]
fn web_time_now() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// A table as rows of cells, with its caption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub name: String,
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn markdown(&self) -> String {
        let mut s = format!("### {}\n\n{}\n\n| {} |\n|{}\n", self.name, self.caption, self.header.join(" | "), "---|".repeat(self.header.len()));
        for row in &self.rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        s
    }

    pub fn csv(&self) -> String {
        let quote = |c: &str| if c.contains([',', '"']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.to_string() };
        let mut s = self.header.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            s += &(row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n");
        }
        s
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

fn percent(n: usize, d: usize) -> String {
    if d == 0 { "–".into() } else { format!("{:.1}", 100.0 * n as f64 / d as f64) }
}

/// Every table the records support, in the paper's order.
/// `kinds` names each fake's forgery (image name → kind, as `unforge synth` writes them); with
/// it, localisation is also broken down by kind.
pub fn tables(records: &[Record], detectors: &[String], experiments: &[Experiment], id_threshold: f64, kinds: &BTreeMap<String, String>) -> Vec<Table> {
    let victims: Vec<&String> = detectors.iter().filter(|d| records.iter().any(|r| &r.victim == *d)).collect();
    let of = |victim: &str, tag: &str| -> Vec<&Record> { records.iter().filter(|r| r.victim == victim && r.experiment == tag).collect() };
    let tags: Vec<&str> = experiments.iter().map(|e| e.tag()).collect();
    let main_tags: Vec<&str> = tags.iter().copied().filter(|t| !t.starts_with("latent-") && !t.starts_with("preset-")).collect();
    let mut out = Vec::new();

    // Tab. 1: quality on the images that succeeded.
    let mut rows = Vec::new();
    for v in &victims {
        for t in &main_tags {
            let ok: Vec<&Record> = of(v, t).into_iter().filter(|r| r.detected_before && r.success).collect();
            if of(v, t).is_empty() {
                continue;
            }
            let q = |f: fn(&Quality) -> Option<f64>| mean(ok.iter().filter_map(|r| f(&r.quality)));
            let retained = ok.iter().filter(|r| r.quality.id_similarity.is_some_and(|s| s >= id_threshold)).count();
            let has_id = ok.iter().any(|r| r.quality.id_similarity.is_some());
            rows.push(vec![
                v.to_string(),
                t.to_string(),
                ok.len().to_string(),
                cell(q(|q| q.id_similarity), 3),
                if has_id { percent(retained, ok.len()) } else { "–".into() },
                cell(q(|q| q.lpips), 4),
                cell(q(|q| Some(q.tv_changed)), 2),
                cell(q(|q| Some(q.tv_l1_changed)), 1),
                cell(q(|q| q.esnle_changed), 3),
                cell(q(|q| Some(q.psnr_db)), 2),
                cell(q(|q| q.ssim), 4),
            ]);
        }
    }
    out.push(Table {
        name: "Tab. 1: quality on successful images".into(),
        caption: format!(
            "Means over the images each attack fooled. ID: ArcFace cosine (retained: share ≥ {id_threshold}); TV (AE): Artifact-Eraser's TV × 255; TV (L1): torchmetrics' sum; ESNLE × 255. Latent rows compare the counterfactual with the reconstruction, pixel rows the attacked image with the input."
        ),
        header: ["victim", "attack", "n", "ID", "ID retained %", "LPIPS", "TV (AE)", "TV (L1)", "ESNLE", "PSNR dB", "SSIM"].map(String::from).to_vec(),
        rows,
    });

    // Tab. 2/3: transfer matrix, % called real (P(fake) < 0.5) by each detector.
    let mut rows = Vec::new();
    for v in &victims {
        for t in &main_tags {
            let attacked: Vec<&Record> = of(v, t).into_iter().filter(|r| r.detected_before).collect();
            if of(v, t).is_empty() {
                continue;
            }
            let mut row = vec![v.to_string(), t.to_string(), attacked.len().to_string()];
            for d in detectors {
                let fooled = attacked.iter().filter(|r| r.after.get(d).is_some_and(|p| *p < 0.5)).count();
                row.push(percent(fooled, attacked.len()));
            }
            rows.push(row);
        }
    }
    let mut header: Vec<String> = ["victim", "attack", "n"].map(String::from).to_vec();
    header.extend(detectors.iter().map(|d| format!("{d} %")));
    out.push(Table {
        name: "Tab. 2/3: transfer".into(),
        caption: "Share of the images the victim detected before the attack that each detector calls real (P(fake) < 0.5) after it; the victim's own column is the white-box ASR.".into(),
        header,
        rows,
    });

    // Localisation against the ground truth.
    if records.iter().any(|r| r.localisation.is_some()) {
        let mut rows = Vec::new();
        for v in &victims {
            for t in &tags {
                let with: Vec<&Localisation> = of(v, t).into_iter().filter(|r| r.detected_before).filter_map(|r| r.localisation.as_ref()).collect();
                if with.is_empty() {
                    continue;
                }
                rows.push(vec![
                    v.to_string(),
                    t.to_string(),
                    with.len().to_string(),
                    cell(mean(with.iter().filter_map(|l| l.change_auroc)), 3),
                    cell(mean(with.iter().filter_map(|l| l.cam_auroc)), 3),
                ]);
            }
        }
        out.push(Table {
            name: "Localisation".into(),
            caption: "Mean AUROC against the ground-truth masks, over the images the victim detected: the change (residual magnitude, or the pixel perturbation's) and the drop of the victim's Grad-CAM for “fake” from reconstruction to counterfactual. 0.5 is chance.".into(),
            header: ["victim", "attack", "n", "change AUROC", "CAM drop AUROC"].map(String::from).to_vec(),
            rows,
        });
        // Which forgeries an explanation finds: a mean over kinds hides that.
        let mut rows = Vec::new();
        for v in &victims {
            for t in &main_tags {
                let mut by_kind: BTreeMap<&str, Vec<&Localisation>> = BTreeMap::new();
                for r in of(v, t).into_iter().filter(|r| r.detected_before) {
                    if let (Some(l), Some(kind)) = (r.localisation.as_ref(), kinds.get(&r.image)) {
                        by_kind.entry(kind).or_default().push(l);
                    }
                }
                for (kind, with) in by_kind {
                    rows.push(vec![
                        v.to_string(),
                        t.to_string(),
                        kind.to_string(),
                        with.len().to_string(),
                        cell(mean(with.iter().filter_map(|l| l.change_auroc)), 3),
                        cell(mean(with.iter().filter_map(|l| l.cam_auroc)), 3),
                    ]);
                }
            }
        }
        if !rows.is_empty() {
            out.push(Table {
                name: "Localisation by forgery kind".into(),
                caption: "The localisation table's AUROCs for the main attacks (no level, step-size or preset variants), over the detected images of each forgery kind that `samples.json` names.".into(),
                header: ["victim", "attack", "kind", "n", "change AUROC", "CAM drop AUROC"].map(String::from).to_vec(),
                rows,
            });
        }
    }

    // Tab. 4: level ablation.
    let level_tags: Vec<(&str, &str)> = [("S", "latent-S"), ("M", "latent-M"), ("D", "latent-D"), ("full", "latent-full")]
        .into_iter()
        .map(|(l, t)| (l, if tags.contains(&t) { t } else { "latent" }))
        .collect();
    if tags.iter().any(|t| ["latent-S", "latent-M", "latent-D"].contains(t)) {
        let rows = victims
            .iter()
            .map(|v| {
                let mut row = vec![v.to_string()];
                for (_, t) in &level_tags {
                    let attacked: Vec<&Record> = of(v, t).into_iter().filter(|r| r.detected_before).collect();
                    row.push(percent(attacked.iter().filter(|r| r.success).count(), attacked.len()));
                }
                row
            })
            .collect();
        out.push(Table {
            name: "Tab. 4: level ablation".into(),
            caption: "White-box ASR (%) when only the S, M or D rows of W+ (or all) may change.".into(),
            header: ["victim", "S", "M", "D", "full"].map(String::from).to_vec(),
            rows,
        });
    }

    // Tab. 5: α ablation.
    let alpha_runs: Vec<(f32, &str)> = experiments
        .iter()
        .filter_map(|e| match e {
            Experiment::Latent { tag, config, .. } if tag == "latent" || tag.starts_with("latent-alpha-") => Some((config.alpha, tag.as_str())),
            _ => None,
        })
        .collect();
    if alpha_runs.len() > 1 {
        let mut rows = Vec::new();
        for v in &victims {
            for (alpha, t) in &alpha_runs {
                let attacked: Vec<&Record> = of(v, t).into_iter().filter(|r| r.detected_before).collect();
                let ok: Vec<&&Record> = attacked.iter().filter(|r| r.success).collect();
                rows.push(vec![
                    v.to_string(),
                    format!("{alpha}"),
                    percent(ok.len(), attacked.len()),
                    cell(mean(ok.iter().map(|r| r.steps as f64)), 1),
                    cell(mean(ok.iter().filter_map(|r| r.quality.lpips)), 4),
                    cell(mean(ok.iter().map(|r| r.quality.tv_changed)), 2),
                    cell(mean(ok.iter().filter_map(|r| r.quality.esnle_changed)), 3),
                    cell(mean(ok.iter().map(|r| r.quality.psnr_db)), 2),
                ]);
            }
        }
        out.push(Table {
            name: "Tab. 5: step size α".into(),
            caption: "ASR and quality of the successful counterfactuals for each α (other settings as the main run).".into(),
            header: ["victim", "α", "ASR %", "steps", "LPIPS", "TV (AE)", "ESNLE", "PSNR dB"].map(String::from).to_vec(),
            rows,
        });
    }

    // ASR against steps: paper preset vs fast preset.
    let curve_tags: Vec<&str> = tags.iter().copied().filter(|t| t.starts_with("preset-")).collect();
    if !curve_tags.is_empty() {
        let budgets = [1usize, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
        let mut rows = Vec::new();
        for v in &victims {
            for t in &curve_tags {
                let attacked: Vec<&Record> = of(v, t).into_iter().filter(|r| r.detected_before).collect();
                let mut row = vec![v.to_string(), t.trim_start_matches("preset-").to_string()];
                for k in budgets {
                    // An image counts at budget k once its goal held at a latent reached in ≤ k steps.
                    let n = attacked.iter().filter(|r| r.success && r.first_success_step.is_some_and(|s| s <= k)).count();
                    row.push(percent(n, attacked.len()));
                }
                let ok: Vec<&&Record> = attacked.iter().filter(|r| r.success).collect();
                row.push(cell(mean(ok.iter().filter_map(|r| r.quality.lpips)), 4));
                row.push(cell(mean(ok.iter().filter_map(|r| r.quality.id_similarity)), 3));
                row.push(cell(mean(ok.iter().map(|r| r.quality.psnr_db)), 2));
                row.push(cell(mean(ok.iter().filter_map(|r| r.quality.ssim)), 4));
                rows.push(row);
            }
        }
        let mut header: Vec<String> = ["victim", "preset"].map(String::from).to_vec();
        header.extend(budgets.iter().map(|k| format!("≤{k}")));
        header.extend(["LPIPS", "ID", "PSNR dB", "SSIM"].map(String::from));
        out.push(Table {
            name: "ASR against steps".into(),
            caption: "White-box ASR (%) reached within k steps, and the quality of the successful counterfactuals.".into(),
            header,
            rows,
        });
    }
    out
}

/// The tables as one Markdown document.
pub fn markdown(tables: &[Table]) -> String {
    tables.iter().map(Table::markdown).collect::<Vec<_>>().join("\n")
}

/// Parses comma-separated pixel attack names with a shared budget.
pub fn pixel_attacks(names: &[&str], eps: f32, alpha: f32, steps: usize, mu: f32, seed: u64) -> Result<Vec<PixelAttack>> {
    names
        .iter()
        .map(|n| {
            let method = PixelMethod::from_name(n, mu)?;
            let attack = PixelAttack { eps, alpha, steps, seed, ..PixelAttack::torchattacks(method) };
            attack.validate()?;
            Ok(attack)
        })
        .collect()
}

/// One detector on labelled images before any search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorQuality {
    /// `None` unless the images hold both real and fake ones.
    pub auc: Option<f64>,
    /// Share of images on the right side of P(fake) = 0.5.
    pub accuracy: f64,
    /// Share of the fakes still called fake after inversion: below it the search has little
    /// to remove.
    pub detected_reconstructed_fakes: f64,
    /// Share of the real images called fake after inversion: a reconstruction that looks
    /// generated to the detector, whatever its forgery.
    #[serde(default)]
    pub flagged_reconstructed_reals: Option<f64>,
    /// AUC on the reconstructions: whether they still separate real from fake.
    #[serde(default)]
    pub reconstruction_auc: Option<f64>,
    /// P(fake) of each image, in the order given.
    pub p_fake: Vec<f32>,
}

/// How a zoo does on labelled images before any search: each detector's AUC, accuracy and
/// detection of reconstructed fakes, and the inversion's quality (the zoo card's numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooScores {
    pub images: usize,
    pub fakes: usize,
    pub reconstruction_psnr_db: f64,
    pub reconstruction_ssim: Option<f64>,
    /// With the zoo's LPIPS, when it has one.
    pub reconstruction_lpips: Option<f64>,
    pub detectors: BTreeMap<String, DetectorQuality>,
    /// Per forgery kind, per detector: the share of that kind's fakes called fake.
    pub by_kind: BTreeMap<String, BTreeMap<String, f64>>,
    /// How the reconstructions were made.
    #[serde(default)]
    pub pivotal_tuning: PivotalTuning,
}

/// One labelled image's part of a zoo's scores: every detector's P(fake) on the image and on
/// its reconstruction, and the reconstruction's quality. Measured from an inversion made
/// elsewhere, so a caller that also searches the image inverts (and tunes) it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// The forgery kind (`None`: real; `"fake"` when the kind is not known).
    pub kind: Option<String>,
    pub raw: Vec<f32>,
    pub reconstructed: Vec<f32>,
    pub quality: Quality,
}

impl ImageScore {
    pub async fn measure(zoo: &Zoo, image: &RgbaImage, kind: Option<String>, inversion: &Inversion, device: &Device) -> Result<Self> {
        // The reconstruction's size: quality compares like with like, and detectors pool both
        // down to their input.
        let x = image.to_tensor(zoo.generator.size, device);
        let quality = zoo.quality(x.clone(), inversion.reconstruction.clone()).await?;
        let (raw, reconstructed) = (zoo.score_all(x).await?, zoo.score_all(inversion.reconstruction.clone()).await?);
        Ok(Self { kind, raw, reconstructed, quality })
    }
}

impl ZooScores {
    /// Scores `images`, each with its forgery kind (`None`: real; `"fake"` when the kind is
    /// not known).
    /// Reconstructions are made with `tuning` (the search's pivotal tuning).
    pub async fn measure(zoo: &Zoo, images: impl IntoIterator<Item = (RgbaImage, Option<String>)>, tuning: &PivotalTuning, device: &Device) -> Result<Self> {
        let mut scores = Vec::new();
        for (image, kind) in images {
            let inversion = zoo.invert_tuned(&image, tuning, device, &mut |_| {}).await?;
            scores.push(ImageScore::measure(zoo, &image, kind, &inversion, device).await?);
        }
        Ok(Self::from_images(zoo, scores, tuning))
    }

    /// The scores of images measured one by one (in this order), their reconstructions made
    /// with `tuning`.
    pub fn from_images(zoo: &Zoo, images: impl IntoIterator<Item = ImageScore>, tuning: &PivotalTuning) -> Self {
        let n = zoo.detectors.len();
        let (mut labels, mut kinds, mut raw, mut rec) = (Vec::new(), Vec::new(), vec![Vec::new(); n], vec![Vec::new(); n]);
        let mut quality = Vec::new();
        for image in images {
            labels.push(image.kind.is_some());
            kinds.push(image.kind);
            quality.push(image.quality);
            for d in 0..n {
                raw[d].push(image.raw[d]);
                rec[d].push(image.reconstructed[d]);
            }
        }
        let fakes = labels.iter().filter(|f| **f).count();
        let share = |hits: usize, of: usize| if of == 0 { 0.0 } else { hits as f64 / of as f64 };
        let detectors = zoo
            .detectors
            .iter()
            .enumerate()
            .map(|(d, (name, _))| {
                let right = raw[d].iter().zip(&labels).filter(|(p, l)| (**p >= 0.5) == **l).count();
                let called_fake = |want_fake: bool| rec[d].iter().zip(&labels).filter(|(p, l)| **l == want_fake && **p >= 0.5).count();
                let reals = labels.len() - fakes;
                let q = DetectorQuality {
                    auc: auroc(&raw[d], &labels),
                    accuracy: share(right, labels.len()),
                    detected_reconstructed_fakes: share(called_fake(true), fakes),
                    flagged_reconstructed_reals: (reals > 0).then(|| share(called_fake(false), reals)),
                    reconstruction_auc: auroc(&rec[d], &labels),
                    p_fake: raw[d].clone(),
                };
                (name.clone(), q)
            })
            .collect();
        let mut by_kind: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for kind in kinds.iter().flatten().collect::<std::collections::BTreeSet<_>>() {
            let of_kind: Vec<usize> = kinds.iter().enumerate().filter(|(_, k)| k.as_ref() == Some(kind)).map(|(i, _)| i).collect();
            let rates = zoo.detectors.iter().enumerate().map(|(d, (name, _))| (name.clone(), share(of_kind.iter().filter(|&&i| raw[d][i] >= 0.5).count(), of_kind.len())));
            by_kind.insert(kind.clone(), rates.collect());
        }
        Self {
            by_kind,
            pivotal_tuning: *tuning,
            images: labels.len(),
            fakes,
            reconstruction_psnr_db: mean(quality.iter().map(|q| q.psnr_db)).unwrap_or(f64::NAN),
            reconstruction_ssim: mean(quality.iter().filter_map(|q| q.ssim)),
            reconstruction_lpips: mean(quality.iter().filter_map(|q| q.lpips)),
            detectors,
        }
    }

    fn tuning_note(&self) -> String {
        let t = self.pivotal_tuning;
        if t.steps == 0 { String::new() } else { format!(" with {} steps of pivotal tuning (lr {})", t.steps, t.learning_rate) }
    }

    /// The two tables of the zoo card: detectors, and the inversion.
    pub fn tables(&self) -> Vec<Table> {
        let detectors = Table {
            name: "Detectors before the search".into(),
            caption: format!(
                "{} images ({} fake). AUC and accuracy on the images; after inversion{}: the share of the fakes still called fake (P ≥ 0.5), the share of the reals called fake, and the AUC on the reconstructions.",
                self.images,
                self.fakes,
                self.tuning_note()
            ),
            header: ["detector", "AUC", "accuracy %", "detected after inversion %", "reals called fake after inversion %", "AUC after inversion"].map(String::from).to_vec(),
            rows: self
                .detectors
                .iter()
                .map(|(n, d)| {
                    let percent = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v));
                    vec![n.clone(), cell(d.auc, 3), percent(Some(d.accuracy)), percent(Some(d.detected_reconstructed_fakes)), percent(d.flagged_reconstructed_reals), cell(d.reconstruction_auc, 3)]
                })
                .collect(),
        };
        let inversion = Table {
            name: "Inversion".into(),
            caption: format!("Reconstruction{} against the input, mean over the images (LPIPS with the zoo's perceptual network, when it has one).", self.tuning_note()),
            header: ["PSNR dB", "SSIM", "LPIPS"].map(String::from).to_vec(),
            rows: vec![vec![format!("{:.2}", self.reconstruction_psnr_db), cell(self.reconstruction_ssim, 4), cell(self.reconstruction_lpips, 4)]],
        };
        let names: Vec<&String> = self.detectors.keys().collect();
        let by_kind = Table {
            name: "Detection by forgery kind".into(),
            caption: "Share of each kind's fakes called fake (P ≥ 0.5), %.".into(),
            header: std::iter::once("kind".to_string()).chain(names.iter().map(|n| n.to_string())).collect(),
            rows: self.by_kind.iter().map(|(kind, rates)| std::iter::once(kind.clone()).chain(names.iter().map(|n| rates.get(*n).map_or("–".into(), |r| format!("{:.1}", 100.0 * r)))).collect()).collect(),
        };
        vec![detectors, by_kind, inversion]
    }
}

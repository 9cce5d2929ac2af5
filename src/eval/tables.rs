//! The tables of an evaluation, one function per table, in the paper's order. Each takes the
//! records and returns its table, or `None` when the records do not support it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Experiment, Record};
use crate::explain::Localisation;
use crate::metrics::Quality;

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
        let mut s = format!(
            "### {}\n\n{}\n\n| {} |\n|{}\n",
            self.name,
            self.caption,
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        );
        for row in &self.rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        s
    }

    pub fn csv(&self) -> String {
        let quote =
            |c: &str| if c.contains([',', '"']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.to_string() };
        let mut s = self.header.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            s += &(row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n");
        }
        s
    }
}

pub(super) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub(super) fn cell(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

fn percent(n: usize, d: usize) -> String {
    if d == 0 { "–".into() } else { format!("{:.1}", 100.0 * n as f64 / d as f64) }
}

/// Every table the records support, in the paper's order.
/// `kinds` names each fake's forgery (image name → kind, as `unforge synth` writes them); with
/// it, localisation is also broken down by kind.
pub fn tables(
    records: &[Record],
    detectors: &[String],
    experiments: &[Experiment],
    id_threshold: f64,
    kinds: &BTreeMap<String, String>,
) -> Vec<Table> {
    let runs = Runs::new(records, detectors, experiments);
    [
        quality(&runs, id_threshold),
        transfer(&runs),
        localisation(&runs),
        localisation_by_kind(&runs, kinds),
        level_ablation(&runs),
        step_size_ablation(&runs),
        asr_against_steps(&runs),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The records with the ways the tables select them.
struct Runs<'a> {
    records: &'a [Record],
    detectors: &'a [String],
    experiments: &'a [Experiment],
    /// The detectors some record attacked.
    victims: Vec<&'a String>,
    /// Every experiment's tag, and the main ones (no level, step-size or preset variants).
    tags: Vec<&'a str>,
    main_tags: Vec<&'a str>,
}

impl<'a> Runs<'a> {
    fn new(records: &'a [Record], detectors: &'a [String], experiments: &'a [Experiment]) -> Self {
        let victims = detectors.iter().filter(|d| records.iter().any(|r| &r.victim == *d)).collect();
        let tags: Vec<&str> = experiments.iter().map(|e| e.tag()).collect();
        let main_tags =
            tags.iter().copied().filter(|t| !t.starts_with("latent-") && !t.starts_with("preset-")).collect();
        Self { records, detectors, experiments, victims, tags, main_tags }
    }

    fn of(&self, victim: &str, tag: &str) -> Vec<&'a Record> {
        self.records.iter().filter(|r| r.victim == victim && r.experiment == tag).collect()
    }

    /// The runs whose image the victim detected before the attack: only these count.
    fn detected(&self, victim: &str, tag: &str) -> Vec<&'a Record> {
        self.of(victim, tag).into_iter().filter(|r| r.detected_before).collect()
    }
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Tab. 1: quality on the images that succeeded.
fn quality(runs: &Runs, id_threshold: f64) -> Option<Table> {
    let mut rows = Vec::new();
    for v in &runs.victims {
        for t in &runs.main_tags {
            if runs.of(v, t).is_empty() {
                continue;
            }
            let ok: Vec<&Record> = runs.detected(v, t).into_iter().filter(|r| r.success).collect();
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
    Some(Table {
        name: "Tab. 1: quality on successful images".into(),
        caption: format!(
            "Means over the images each attack fooled. ID: ArcFace cosine (retained: share ≥ {id_threshold}); \
             TV (AE): Artifact-Eraser's TV × 255; TV (L1): torchmetrics' sum; ESNLE × 255. Latent rows compare the \
             counterfactual with the reconstruction, pixel rows the attacked image with the input."
        ),
        header: header(&[
            "victim",
            "attack",
            "n",
            "ID",
            "ID retained %",
            "LPIPS",
            "TV (AE)",
            "TV (L1)",
            "ESNLE",
            "PSNR dB",
            "SSIM",
        ]),
        rows,
    })
}

/// Tab. 2/3: the transfer matrix, % called real (P(fake) < 0.5) by each detector.
fn transfer(runs: &Runs) -> Option<Table> {
    let mut rows = Vec::new();
    for v in &runs.victims {
        for t in &runs.main_tags {
            if runs.of(v, t).is_empty() {
                continue;
            }
            let attacked = runs.detected(v, t);
            let mut row = vec![v.to_string(), t.to_string(), attacked.len().to_string()];
            for d in runs.detectors {
                let fooled = attacked.iter().filter(|r| r.after.get(d).is_some_and(|p| *p < 0.5)).count();
                row.push(percent(fooled, attacked.len()));
            }
            rows.push(row);
        }
    }
    let mut header = header(&["victim", "attack", "n"]);
    header.extend(runs.detectors.iter().map(|d| format!("{d} %")));
    Some(Table {
        name: "Tab. 2/3: transfer".into(),
        caption: "Share of the images the victim detected before the attack that each detector calls real \
                  (P(fake) < 0.5) after it; the victim's own column is the white-box ASR."
            .into(),
        header,
        rows,
    })
}

fn auroc_cells(with: &[&Localisation]) -> [String; 2] {
    [cell(mean(with.iter().filter_map(|l| l.change_auroc)), 3), cell(mean(with.iter().filter_map(|l| l.cam_auroc)), 3)]
}

/// Localisation against the ground truth, when the images had masks.
fn localisation(runs: &Runs) -> Option<Table> {
    if !runs.records.iter().any(|r| r.localisation.is_some()) {
        return None;
    }
    let mut rows = Vec::new();
    for v in &runs.victims {
        for t in &runs.tags {
            let with: Vec<&Localisation> =
                runs.detected(v, t).into_iter().filter_map(|r| r.localisation.as_ref()).collect();
            if with.is_empty() {
                continue;
            }
            rows.push(
                [vec![v.to_string(), t.to_string(), with.len().to_string()], auroc_cells(&with).to_vec()].concat(),
            );
        }
    }
    Some(Table {
        name: "Localisation".into(),
        caption: "Mean AUROC against the ground-truth masks, over the images the victim detected: the change \
                  (residual magnitude, or the pixel perturbation's) and the drop of the victim's Grad-CAM for “fake” \
                  from reconstruction to counterfactual. 0.5 is chance."
            .into(),
        header: header(&["victim", "attack", "n", "change AUROC", "CAM drop AUROC"]),
        rows,
    })
}

/// Which forgeries an explanation finds: a mean over kinds hides that.
fn localisation_by_kind(runs: &Runs, kinds: &BTreeMap<String, String>) -> Option<Table> {
    let mut rows = Vec::new();
    for v in &runs.victims {
        for t in &runs.main_tags {
            let mut by_kind: BTreeMap<&str, Vec<&Localisation>> = BTreeMap::new();
            for r in runs.detected(v, t) {
                if let (Some(l), Some(kind)) = (r.localisation.as_ref(), kinds.get(&r.image)) {
                    by_kind.entry(kind).or_default().push(l);
                }
            }
            for (kind, with) in by_kind {
                let cells = vec![v.to_string(), t.to_string(), kind.to_string(), with.len().to_string()];
                rows.push([cells, auroc_cells(&with).to_vec()].concat());
            }
        }
    }
    (!rows.is_empty()).then(|| Table {
        name: "Localisation by forgery kind".into(),
        caption: "The localisation table's AUROCs for the main attacks (no level, step-size or preset variants), \
                  over the detected images of each forgery kind that `samples.json` names."
            .into(),
        header: header(&["victim", "attack", "kind", "n", "change AUROC", "CAM drop AUROC"]),
        rows,
    })
}

/// Tab. 4: the level ablation, when the S, M or D levels ran alone.
fn level_ablation(runs: &Runs) -> Option<Table> {
    if !runs.tags.iter().any(|t| ["latent-S", "latent-M", "latent-D"].contains(t)) {
        return None;
    }
    // Full is the main run unless it ran as a variant of its own.
    let level_tags: Vec<&str> = ["latent-S", "latent-M", "latent-D", "latent-full"]
        .into_iter()
        .map(|t| if runs.tags.contains(&t) { t } else { "latent" })
        .collect();
    let rows = runs
        .victims
        .iter()
        .map(|v| {
            let asr = level_tags.iter().map(|t| {
                let attacked = runs.detected(v, t);
                percent(attacked.iter().filter(|r| r.success).count(), attacked.len())
            });
            std::iter::once(v.to_string()).chain(asr).collect()
        })
        .collect();
    Some(Table {
        name: "Tab. 4: level ablation".into(),
        caption: "White-box ASR (%) when only the S, M or D rows of W+ (or all) may change.".into(),
        header: header(&["victim", "S", "M", "D", "full"]),
        rows,
    })
}

/// Tab. 5: the step-size ablation, when more than one α ran.
fn step_size_ablation(runs: &Runs) -> Option<Table> {
    let alpha_runs: Vec<(f32, &str)> = runs
        .experiments
        .iter()
        .filter_map(|e| match e {
            Experiment::Latent { tag, config, .. } if tag == "latent" || tag.starts_with("latent-alpha-") => {
                Some((config.alpha, tag.as_str()))
            }
            _ => None,
        })
        .collect();
    if alpha_runs.len() < 2 {
        return None;
    }
    let mut rows = Vec::new();
    for v in &runs.victims {
        for (alpha, t) in &alpha_runs {
            let attacked = runs.detected(v, t);
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
    Some(Table {
        name: "Tab. 5: step size α".into(),
        caption: "ASR and quality of the successful counterfactuals for each α (other settings as the main run)."
            .into(),
        header: header(&["victim", "α", "ASR %", "steps", "LPIPS", "TV (AE)", "ESNLE", "PSNR dB"]),
        rows,
    })
}

/// ASR against steps: the paper preset against the fast one, when the curve ran.
fn asr_against_steps(runs: &Runs) -> Option<Table> {
    let curve_tags: Vec<&str> = runs.tags.iter().copied().filter(|t| t.starts_with("preset-")).collect();
    if curve_tags.is_empty() {
        return None;
    }
    let budgets = [1usize, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
    let mut rows = Vec::new();
    for v in &runs.victims {
        for t in &curve_tags {
            let attacked = runs.detected(v, t);
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
    let mut header = header(&["victim", "preset"]);
    header.extend(budgets.iter().map(|k| format!("≤{k}")));
    header.extend(["LPIPS", "ID", "PSNR dB", "SSIM"].map(String::from));
    Some(Table {
        name: "ASR against steps".into(),
        caption: "White-box ASR (%) reached within k steps, and the quality of the successful counterfactuals.".into(),
        header,
        rows,
    })
}

/// The tables as one Markdown document.
pub fn markdown(tables: &[Table]) -> String {
    tables.iter().map(Table::markdown).collect::<Vec<_>>().join("\n")
}

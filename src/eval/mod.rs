//! The paper's experiments over a set of images: the experiments a plan asks for, what each
//! run records, the tables the records add up to (`tables`), and the zoo's own scores before
//! any search (`zoo_scores`). File handling (resume, output folders) belongs to the front.

pub mod tables;
pub mod zoo_scores;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::explain::{Localisation, ResidualMap};
use crate::explanation::{ExplainRequest, Face, PreviewScore, explain_inverted};
use crate::inversion::Inversion;
use crate::metrics::Quality;
use crate::readback::read_planar;
use crate::search::{Level, PixelAttack, PixelMethod, Preset, RowMask, SearchConfig};
use crate::zoo::Zoo;

pub use tables::{Table, markdown, tables};
pub use zoo_scores::{DetectorQuality, ImageScore, ZooScores};

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
        let mut out =
            vec![Experiment::Latent { tag: "latent".into(), levels: self.levels.clone(), config: self.search.clone() }];
        for attack in &self.pixel {
            out.push(Experiment::Pixel { tag: attack.method.name().into(), attack: attack.clone() });
        }
        if self.level_ablation {
            for level in [Level::Shallow, Level::Middle, Level::Deep, Level::Full] {
                if self.levels == [level] {
                    continue;
                }
                out.push(Experiment::Latent {
                    tag: format!("latent-{}", levels_tag(&[level])),
                    levels: vec![level],
                    config: self.search.clone(),
                });
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
                let tag = format!("preset-{}", preset.name());
                // Both presets start from the plan's inversion (its pivotal tuning included).
                let config = SearchConfig {
                    pivotal_tuning: self.search.pivotal_tuning,
                    ..preset.config_with_identity(self.identity_network)
                };
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
    /// A search through a preview: its side and the victim's last P(fake) there (`p_fake_after`
    /// and `success` are the full-size render's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewScore>,
    pub seconds: f64,
}

/// One run: an experiment on one image against one victim.
#[derive(Debug, Clone, Copy)]
pub struct Trial<'a> {
    /// The image's name in the records.
    pub image: &'a str,
    pub victim: &'a str,
    pub experiment: &'a Experiment,
}

/// Runs one trial on `face` (the image's crop, with its truth mask when it has one).
/// `inversion`: the face's inversion, when the caller made it once for several experiments;
/// a latent experiment whose pivotal tuning differs (or with none given) makes its own.
pub async fn run_one(zoo: &Zoo, face: &Face, inversion: Option<&Inversion>, trial: &Trial<'_>) -> Result<Record> {
    let start = web_time_now();
    let mut record = match trial.experiment {
        Experiment::Latent { levels, config, .. } => {
            let mask = RowMask::from_levels(levels, &zoo.manifest.levels, zoo.manifest.n_latent)?;
            let request = ExplainRequest::new(trial.victim, mask, config.clone());
            let made;
            let inversion = match inversion {
                Some(inversion) if inversion.made_with(&config.pivotal_tuning) => inversion,
                _ => {
                    made = zoo
                        .inverter()
                        .invert_tuned(&face.crop, &config.pivotal_tuning, &zoo.device, &mut |_| {})
                        .await?;
                    &made
                }
            };
            let r = explain_inverted(zoo, face, inversion, &request, &mut ()).await?;
            Record {
                image: trial.image.into(),
                victim: trial.victim.into(),
                experiment: trial.experiment.tag().into(),
                p_fake_before: r.p_fake_reconstruction,
                p_fake_after: r.p_fake_counterfactual,
                detected_before: r.p_fake_reconstruction >= 0.5,
                success: r.success,
                steps: r.steps,
                first_success_step: r.first_success_step,
                after: r.scores.iter().map(|s| (s.detector.clone(), s.counterfactual)).collect(),
                quality: r.quality,
                localisation: r.localisation,
                preview: r.preview,
                seconds: 0.0,
            }
        }
        Experiment::Pixel { attack, .. } => pixel_record(zoo, face, attack, trial).await?,
    };
    record.seconds = web_time_now() - start;
    Ok(record)
}

/// An image-space baseline on the face, scored as the latent search is.
async fn pixel_record(zoo: &Zoo, face: &Face, attack: &PixelAttack, trial: &Trial<'_>) -> Result<Record> {
    let size = zoo.generator.size;
    let det = zoo.detector(trial.victim)?;
    let input = face.image.to_tensor(size, &zoo.device);
    let adversarial = attack.run(det, input.clone())?;
    let before = zoo.score_all(input.clone()).await?;
    let after = zoo.score_all(adversarial.clone()).await?;
    let names = zoo.detector_names();
    let v = names.iter().position(|n| n == trial.victim).expect("victim exists");
    let localisation = match &face.truth {
        Some(mask) => {
            let (a, b) =
                (read_planar(input.clone()).await?.remove(0), read_planar(adversarial.clone()).await?.remove(0));
            Some(Localisation::of_perturbation(&ResidualMap::new(&a, &b, size, size), mask))
        }
        None => None,
    };
    Ok(Record {
        image: trial.image.into(),
        victim: trial.victim.into(),
        experiment: trial.experiment.tag().into(),
        p_fake_before: before[v],
        p_fake_after: after[v],
        detected_before: before[v] >= 0.5,
        success: after[v] < 0.5,
        steps: if attack.method == PixelMethod::Fgsm { 1 } else { attack.steps },
        first_success_step: None,
        after: names.into_iter().zip(after).collect(),
        localisation,
        quality: zoo.quality(input, adversarial).await?,
        preview: None,
        seconds: 0.0,
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn web_time_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(target_arch = "wasm32")]
fn web_time_now() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Parses comma-separated pixel attack names with a shared budget.
pub fn pixel_attacks(
    names: &[&str],
    eps: f32,
    alpha: f32,
    steps: usize,
    mu: f32,
    seed: u64,
) -> Result<Vec<PixelAttack>> {
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

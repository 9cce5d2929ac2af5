//! How a zoo does on labelled images before any search: each detector's AUC, accuracy and
//! detection of reconstructed fakes, and the inversion's quality (the zoo card's numbers).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tables::{Table, cell, mean};
use crate::error::Result;
use crate::image::RgbaImage;
use crate::inversion::{Inversion, PivotalTuning};
use crate::metrics::{Quality, auroc};
use crate::zoo::Zoo;

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
    /// Per forgery kind, per detector: the AUC of that kind's fakes against all the reals, on
    /// the images (empty without reals).
    #[serde(default)]
    pub auc_by_kind: BTreeMap<String, BTreeMap<String, f64>>,
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
    pub async fn measure(zoo: &Zoo, image: &RgbaImage, kind: Option<String>, inversion: &Inversion) -> Result<Self> {
        // The reconstruction's size: quality compares like with like, and detectors pool both
        // down to their input.
        let x = image.to_tensor(zoo.generator.size, &zoo.device);
        let quality = zoo.quality(x.clone(), inversion.reconstruction.clone()).await?;
        let (raw, reconstructed) = (zoo.score_all(x).await?, zoo.score_all(inversion.reconstruction.clone()).await?);
        Ok(Self { kind, raw, reconstructed, quality })
    }
}

impl ZooScores {
    /// Scores `images`, each with its forgery kind (`None`: real; `"fake"` when the kind is
    /// not known).
    /// Reconstructions are made with `tuning` (the search's pivotal tuning).
    pub async fn measure(
        zoo: &Zoo,
        images: impl IntoIterator<Item = (RgbaImage, Option<String>)>,
        tuning: &PivotalTuning,
    ) -> Result<Self> {
        let mut scores = Vec::new();
        for (image, kind) in images {
            let inversion = zoo.inverter().invert_tuned(&image, tuning, &zoo.device, &mut |_| {}).await?;
            scores.push(ImageScore::measure(zoo, &image, kind, &inversion).await?);
        }
        Ok(Self::from_images(zoo, scores, tuning))
    }

    /// The scores of images measured one by one (in this order), their reconstructions made
    /// with `tuning`.
    pub fn from_images(zoo: &Zoo, images: impl IntoIterator<Item = ImageScore>, tuning: &PivotalTuning) -> Self {
        let n = zoo.detectors.len();
        let (mut labels, mut kinds, mut raw, mut rec) =
            (Vec::new(), Vec::new(), vec![Vec::new(); n], vec![Vec::new(); n]);
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
                let called_fake = |want_fake: bool| {
                    rec[d].iter().zip(&labels).filter(|(p, l)| **l == want_fake && **p >= 0.5).count()
                };
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
        let (mut by_kind, mut auc_by_kind) = (BTreeMap::new(), BTreeMap::new());
        for kind in kinds.iter().flatten().collect::<std::collections::BTreeSet<_>>() {
            let of_kind: Vec<usize> =
                kinds.iter().enumerate().filter(|(_, k)| k.as_ref() == Some(kind)).map(|(i, _)| i).collect();
            let rates = zoo.detectors.iter().enumerate().map(|(d, (name, _))| {
                (name.clone(), share(of_kind.iter().filter(|&&i| raw[d][i] >= 0.5).count(), of_kind.len()))
            });
            by_kind.insert(kind.clone(), rates.collect());
            // This kind's fakes and every real, in the images' order.
            let against_reals: Vec<usize> =
                (0..kinds.len()).filter(|&i| kinds[i].is_none() || kinds[i].as_ref() == Some(kind)).collect();
            let aucs: BTreeMap<String, f64> = zoo
                .detectors
                .iter()
                .enumerate()
                .filter_map(|(d, (name, _))| {
                    let p: Vec<f32> = against_reals.iter().map(|&i| raw[d][i]).collect();
                    let l: Vec<bool> = against_reals.iter().map(|&i| labels[i]).collect();
                    auroc(&p, &l).map(|a| (name.clone(), a))
                })
                .collect();
            if !aucs.is_empty() {
                auc_by_kind.insert(kind.clone(), aucs);
            }
        }
        Self {
            by_kind,
            auc_by_kind,
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
        if t.steps == 0 {
            String::new()
        } else {
            format!(" with {} steps of pivotal tuning (lr {})", t.steps, t.learning_rate)
        }
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
            header: [
                "detector",
                "AUC",
                "accuracy %",
                "detected after inversion %",
                "reals called fake after inversion %",
                "AUC after inversion",
            ]
            .map(String::from)
            .to_vec(),
            rows: self
                .detectors
                .iter()
                .map(|(n, d)| {
                    let percent = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v));
                    vec![
                        n.clone(),
                        cell(d.auc, 3),
                        percent(Some(d.accuracy)),
                        percent(Some(d.detected_reconstructed_fakes)),
                        percent(d.flagged_reconstructed_reals),
                        cell(d.reconstruction_auc, 3),
                    ]
                })
                .collect(),
        };
        let inversion = Table {
            name: "Inversion".into(),
            caption: format!(
                "Reconstruction{} against the input, mean over the images (LPIPS with the zoo's perceptual network, when it has one).",
                self.tuning_note()
            ),
            header: ["PSNR dB", "SSIM", "LPIPS"].map(String::from).to_vec(),
            rows: vec![vec![
                format!("{:.2}", self.reconstruction_psnr_db),
                cell(self.reconstruction_ssim, 4),
                cell(self.reconstruction_lpips, 4),
            ]],
        };
        let names: Vec<&String> = self.detectors.keys().collect();
        let by_kind = Table {
            name: "Detection by forgery kind".into(),
            caption: "Share of each kind's fakes called fake (P ≥ 0.5), %.".into(),
            header: std::iter::once("kind".to_string()).chain(names.iter().map(|n| n.to_string())).collect(),
            rows: self
                .by_kind
                .iter()
                .map(|(kind, rates)| {
                    std::iter::once(kind.clone())
                        .chain(names.iter().map(|n| rates.get(*n).map_or("–".into(), |r| format!("{:.1}", 100.0 * r))))
                        .collect()
                })
                .collect(),
        };
        let auc_by_kind = Table {
            name: "AUC by forgery kind".into(),
            caption: "Each kind's fakes against all the reals, on the images.".into(),
            header: by_kind.header.clone(),
            rows: self
                .auc_by_kind
                .iter()
                .map(|(kind, aucs)| {
                    std::iter::once(kind.clone()).chain(names.iter().map(|n| cell(aucs.get(*n).copied(), 3))).collect()
                })
                .collect(),
        };
        vec![detectors, by_kind, auc_by_kind, inversion]
    }
}

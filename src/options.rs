//! The typed boundary: what a person asks of one explanation, as the page sends it (serde)
//! and the CLI parses it (clap), resolved against a zoo into an [`ExplainRequest`] by one
//! function. A bad value is refused by name, whichever front it came through.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::explain::{CamMethod, CamTarget};
use crate::explanation::{CamChoice, ExplainRequest, Live};
use crate::image::Square;
use crate::inversion::{LatentRefinement, PivotalTuning};
use crate::search::{Method, Preset, RPROP_MAX_SCALE, Regularisers, RowBands, RowMask, SearchConfig};
use crate::zoo::Zoo;

/// The latent search's settings. A preset gives the defaults; every value given overrides it.
/// Unset values come from the preset, then from the zoo (its pivotal tuning, its identity
/// network for the fast preset's ID regulariser).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::Args))]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchOptions {
    /// paper (attack.sh: I-FGSM, α 8e-4, 1000 steps), readme (the official README: I-FGSM,
    /// α 2e-4, 50 steps) or fast (Rprop from α 8e-4 up to 8×, 200 steps, 6 refine halvings)
    /// [default: readme].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub preset: Option<String>,
    /// Levels of W+ to move: S, M, D or full, comma-separated [default: full]; or --rows.
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub levels: Option<String>,
    /// Explicit rows of W+ to move (comma-separated), instead of levels.
    #[cfg_attr(not(target_arch = "wasm32"), arg(long, value_delimiter = ','))]
    #[serde(deserialize_with = "number::rows")]
    pub rows: Option<Vec<usize>>,
    /// ifgsm (Eq. 3), mifgsm, nifgsm, pgd or rprop [default: the preset's].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub method: Option<String>,
    /// Momentum of MI/NI-FGSM (and of pixel MI-FGSM) [default: 1].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub mu: Option<f32>,
    /// L∞ bound of PGD around the inversion [default: 0.05, the paper's].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub beta: Option<f32>,
    /// Rprop's largest step, in units of α [default: 8].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub max_scale: Option<f32>,
    /// mse (the paper's) or ce [default: mse].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub loss: Option<String>,
    /// Step size α of Eq. 3 [default: the preset's].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub alpha: Option<f32>,
    /// Most search steps [default: the preset's].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub steps: Option<usize>,
    /// Early stop once P(real) − P(fake) > κ; with κ 0, once P(fake) < 0.5 [default: 0.2].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub kappa: Option<f32>,
    /// Halvings back towards the inversion after success (the quality guard) [default: the
    /// preset's: 6 for fast, else 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub refine: Option<usize>,
    /// λ of the pixel-MSE regulariser against the reconstruction [default: 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub lambda_pixel: Option<f32>,
    /// λ of the LPIPS regulariser (needs a perceptual network in the zoo) [default: 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub lambda_lpips: Option<f32>,
    /// λ of the ID regulariser (needs an identity network in the zoo) [default: 0, or 1 with
    /// the fast preset when the zoo has an identity network].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub lambda_id: Option<f32>,
    /// Seed of every random choice (pixel PGD's random start) [default: 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::seed")]
    pub seed: Option<u64>,
    /// Pivotal tuning: Adam steps fine-tuning the generator so that it renders this image from
    /// its inversion, before the search (0: off) [default: what the zoo's manifest recommends,
    /// else 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub tune_steps: Option<usize>,
    /// Adam's learning rate for pivotal tuning [default: the zoo's, else 0.002].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::finite")]
    pub tune_lr: Option<f32>,
    /// The pivot: Adam steps on W+ alone (the generator fixed) refining the encoder's code
    /// before any tuning, as PTI finds its pivot by optimisation (0: the encoder's code)
    /// [default: what the zoo's manifest recommends, else 0].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub pivot_steps: Option<usize>,
    /// Search through a preview of the generator at this side (a power of two, at least every
    /// detector's input size; e.g. 256 for a 1024 generator), then render the counterfactual
    /// at full size; the W+ rows above it stay as they are [default: off].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub preview: Option<usize>,
}

/// What a zoo contributes to the defaults of a search.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZooDefaults {
    /// The fast preset adds its ID regulariser only where there is a network to compute it.
    pub identity_network: bool,
    /// The manifest's recommended pivotal tuning.
    pub pivotal_tuning: Option<PivotalTuning>,
}

impl ZooDefaults {
    pub fn of(zoo: &Zoo) -> Self {
        Self { identity_network: zoo.identity.is_some(), pivotal_tuning: zoo.manifest.pivotal_tuning }
    }
}

/// MI/NI-FGSM's momentum when none is given.
pub const DEFAULT_MU: f32 = 1.0;

impl SearchOptions {
    pub fn preset(&self) -> Result<Preset> {
        self.preset.as_deref().unwrap_or("readme").parse()
    }

    /// The momentum given, else [`DEFAULT_MU`].
    pub fn mu(&self) -> f32 {
        self.mu.unwrap_or(DEFAULT_MU)
    }

    /// The search settings over a zoo's defaults, checked.
    pub fn config(&self, zoo: ZooDefaults) -> Result<SearchConfig> {
        let defaults = self.preset()?.config_with_identity(zoo.identity_network);
        let max_scale = self.max_scale.unwrap_or(RPROP_MAX_SCALE);
        let beta = self.beta.unwrap_or(Preset::PAPER_BETA);
        let method = match (&self.method, defaults.method) {
            (Some(name), _) => Method::from_name_with(name, self.mu(), beta, max_scale)?,
            (None, Method::Rprop { .. }) => Method::Rprop { max_scale },
            (None, preset) => preset,
        };
        // Checked even where the method does not use them: a bad number is a bad number.
        SearchConfig { method: Method::Pgd { beta }, ..defaults.clone() }.validate()?;
        SearchConfig { method: Method::Mifgsm { mu: self.mu() }, ..defaults.clone() }.validate()?;
        SearchConfig { method: Method::Rprop { max_scale }, ..defaults.clone() }.validate()?;
        let tuning = zoo.pivotal_tuning.unwrap_or_else(PivotalTuning::off);
        let regularisers = Regularisers {
            pixel: self.lambda_pixel.unwrap_or(defaults.regularisers.pixel),
            lpips: self.lambda_lpips.unwrap_or(defaults.regularisers.lpips),
            id: self.lambda_id.unwrap_or(defaults.regularisers.id),
        };
        let config = SearchConfig {
            method,
            loss: self.loss.as_deref().map_or(Ok(defaults.loss), str::parse)?,
            alpha: self.alpha.unwrap_or(defaults.alpha),
            max_steps: self.steps.unwrap_or(defaults.max_steps),
            kappa: self.kappa.unwrap_or(defaults.kappa),
            refine: self.refine.unwrap_or(defaults.refine),
            regularisers,
            seed: self.seed.unwrap_or(defaults.seed),
            pivotal_tuning: PivotalTuning {
                steps: self.tune_steps.unwrap_or(tuning.steps),
                learning_rate: self.tune_lr.unwrap_or(tuning.learning_rate),
                pivot: LatentRefinement { steps: self.pivot_steps.unwrap_or(tuning.pivot.steps), ..tuning.pivot },
            },
            preview: self.preview,
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }

    /// The rows the search may move: `rows` when given, else the levels (full by default).
    pub fn mask(&self, bands: &RowBands, n_latent: usize) -> Result<RowMask> {
        match &self.rows {
            Some(rows) => RowMask::from_rows(rows, n_latent),
            None => RowMask::from_level_names(self.levels.as_deref().unwrap_or("full"), bands, n_latent),
        }
    }
}

/// Everything one explanation may be asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::Args))]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExplainOptions {
    /// Victim detector [default: the zoo's first].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub detector: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), command(flatten))]
    pub search: SearchOptions,
    /// CAM of the victim on the input, reconstruction and counterfactual: grad_cam,
    /// grad_cam_plus_plus or layer_cam [default: grad_cam].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub cam: Option<String>,
    /// Layer of the CAM, by its PyTorch name (e.g. block3, conv4, blocks.5) [default: the last
    /// convolutional block]. In the CLI, `--cam-layer list` prints the victim's layers.
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub cam_layer: Option<String>,
    /// Class of the CAM (1 = fake, 0 = real) [default: 1].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    #[serde(deserialize_with = "number::whole")]
    pub cam_class: Option<usize>,
    /// The face square, x,y,side in the image's pixels [default: the centred square].
    #[cfg_attr(not(target_arch = "wasm32"), arg(long))]
    pub crop: Option<Square>,
    /// Live views of the search (the page's chart and thumbnails).
    #[cfg_attr(not(target_arch = "wasm32"), arg(skip))]
    pub live: Live,
}

impl ExplainOptions {
    /// Reads options from any serde source (the page's object), refusing a bad value by the
    /// option's name.
    pub fn deserialize_named<'de, D: Deserializer<'de>>(source: D) -> Result<Self> {
        serde_path_to_error::deserialize(source).map_err(|e| {
            let key = e.path().iter().rev().find_map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            // serde-wasm-bindgen shows its errors as JavaScript shows an Error ("Error: …").
            let shown = e.inner().to_string();
            let reason = shown.strip_prefix("Error: ").unwrap_or(&shown);
            Error::config(match key {
                Some(key) if reason.starts_with("must ") => format!("option `{key}` {reason}"),
                Some(key) => format!("option `{key}`: {reason}"),
                None => format!("options: {reason}"),
            })
        })
    }

    /// The CAM asked for.
    pub fn cam(&self) -> Result<CamChoice> {
        let method = match self.cam.as_deref().unwrap_or("grad_cam") {
            "grad_cam" => CamMethod::GradCam,
            "grad_cam_plus_plus" => CamMethod::GradCamPlusPlus,
            "layer_cam" => CamMethod::LayerCam,
            other => {
                return Err(Error::config(format!("cam `{other}`: use grad_cam, grad_cam_plus_plus or layer_cam")));
            }
        };
        Ok(CamChoice {
            method,
            target: CamTarget { class: self.cam_class.unwrap_or(1), layer: self.cam_layer.clone() },
        })
    }

    /// Checks what can be checked without a zoo (the CLI checks every flag before any work).
    pub fn validate(&self) -> Result<()> {
        self.search.config(ZooDefaults::default())?;
        self.cam()?;
        Ok(())
    }

    /// The one way from options to a request: every default filled from the preset and the
    /// zoo, the rows checked against its W+. The victim and the CAM (layer, class) are checked
    /// against the zoo by the explanation's first step, before any work.
    pub fn resolve(&self, zoo: &Zoo) -> Result<ExplainRequest> {
        let search = self.search.config(ZooDefaults::of(zoo))?;
        let mask = self.search.mask(&zoo.manifest.levels, zoo.manifest.n_latent)?;
        let detector = self.detector.clone().unwrap_or_else(|| zoo.detectors[0].0.clone());
        Ok(ExplainRequest {
            cam: Some(self.cam()?),
            crop: self.crop,
            live: self.live,
            ..ExplainRequest::new(detector, mask, search)
        })
    }
}

/// Numbers as a page may send them: a value that is not one (text, NaN, infinity, 2.5 steps)
/// is refused with what it was, not replaced by a default or truncated.
mod number {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    /// A number as JavaScript writes it (NaN, Infinity, 2.5).
    fn js(n: f64) -> String {
        match n {
            n if n.is_nan() => "NaN".into(),
            n if n == f64::INFINITY => "Infinity".into(),
            n if n == f64::NEG_INFINITY => "-Infinity".into(),
            n => format!("{n}"),
        }
    }

    struct Finite;

    impl<'de> Visitor<'de> for Finite {
        type Value = f32;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a finite number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f32, E> {
            let n = v as f32;
            if n.is_finite() { Ok(n) } else { Err(E::custom(format!("must be a finite number, got {}", js(v)))) }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f32, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f32, E> {
            self.visit_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f32, E> {
            Err(E::custom(format!("must be a finite number, got “{v}”")))
        }
    }

    /// A whole number from 0 to `max`: counts up to u32::MAX (what `usize` holds in wasm32), a
    /// seed up to 2^53 (the largest whole number a JS number holds exactly).
    struct Whole(u64);

    impl<'de> Visitor<'de> for Whole {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a whole number from 0 to {}", self.0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= self.0 as f64 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!("must be a whole number from 0 to {}, got {}", self.0, js(v))))
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            self.visit_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            Err(E::custom(format!("must be a whole number from 0 to {}, got “{v}”", self.0)))
        }
    }

    /// `Option<T>` through a visitor of `T`.
    struct Optional<V>(V);

    impl<'de, V: Visitor<'de>> Visitor<'de> for Optional<V> {
        type Value = Option<V::Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            self.0.expecting(f)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self.0).map(Some)
        }
    }

    pub fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        d.deserialize_option(Optional(Finite))
    }

    pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        Ok(d.deserialize_option(Optional(Whole(u32::MAX as u64)))?.map(|v| v as usize))
    }

    pub fn seed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(Optional(Whole(1 << 53)))
    }

    struct Rows;

    impl<'de> Visitor<'de> for Rows {
        type Value = Vec<usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of row numbers")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<usize>, A::Error> {
            let mut rows = Vec::new();
            while let Some(v) = seq.next_element::<RowValue>()? {
                match v {
                    RowValue::Number(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                        rows.push(n as usize)
                    }
                    RowValue::Number(n) => return Err(de::Error::custom(format!("{} is not a row number", js(n)))),
                    RowValue::Text(t) => return Err(de::Error::custom(format!("“{t}” is not a row number"))),
                }
            }
            Ok(rows)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum RowValue {
        Number(f64),
        Text(String),
    }

    pub fn rows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<usize>>, D::Error> {
        d.deserialize_option(Optional(Rows))
    }
}

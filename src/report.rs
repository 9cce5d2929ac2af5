//! The report of one explanation: what was asked, what was resolved, and every number that
//! came out. The CLI writes it as `report.json`; the page receives the same object and
//! downloads it; both have the same keys.

use serde::Serialize;

use crate::explain::Localisation;
use crate::explanation::{CamChoice, ExplainRequest, Explanation};
use crate::options::ExplainOptions;
use crate::search::SearchConfig;
use crate::zoo::Zoo;

#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    /// The image's file name, when the front knows it.
    pub image: Option<String>,
    pub zoo: &'a str,
    /// Where it ran: `flex` or `wgpu` (CLI), `cpu` or `webgpu` (page).
    pub backend: &'a str,
    /// The options as given.
    pub options: &'a ExplainOptions,
    /// The search's settings after the preset and the zoo's defaults.
    pub search: &'a SearchConfig,
    /// The rows of W+ the search could move.
    pub rows: Vec<usize>,
    pub cam: Option<&'a CamChoice>,
    /// The saved inversion the search started from, when not the encoder's (its file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_latent: Option<&'a str>,
    /// The gains the residual pictures were drawn with (1 / the largest change).
    pub residual_gain: f32,
    pub inversion_error_gain: f32,
    pub truth: Option<TruthReport<'a>>,
    pub result: &'a Explanation,
}

/// The explanation scored against a ground-truth mask.
#[derive(Debug, Clone, Serialize)]
pub struct TruthReport<'a> {
    /// The mask's file name, when the front knows it.
    pub mask: Option<String>,
    pub localisation: &'a Localisation,
}

/// Where a report's explanation came from.
pub struct Provenance<'a> {
    pub zoo: &'a Zoo,
    pub backend: &'a str,
    pub options: &'a ExplainOptions,
    pub request: &'a ExplainRequest,
    pub image: Option<String>,
    pub mask: Option<String>,
}

impl<'a> Report<'a> {
    pub fn new(from: Provenance<'a>, result: &'a Explanation) -> Self {
        let n_latent = from.request.mask.n_latent();
        Report {
            image: from.image,
            zoo: &from.zoo.manifest.name,
            backend: from.backend,
            options: from.options,
            search: &from.request.search,
            rows: (0..n_latent).filter(|&r| from.request.mask.contains(r)).collect(),
            cam: from.request.cam.as_ref(),
            start_latent: from.request.start.as_ref().map(|c| c.origin.as_str()),
            residual_gain: result.residual.auto_gain(),
            inversion_error_gain: result.inversion_error.auto_gain(),
            truth: result.localisation.as_ref().map(|localisation| TruthReport { mask: from.mask, localisation }),
            result,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }
}

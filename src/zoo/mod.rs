//! The model zoo: a manifest (`zoo.json`) naming each network's role, architecture,
//! configuration, weight file and input convention, and the loader that builds them.
//!
//! Weight bytes come from the caller (a directory natively, `fetch` in the browser), so the
//! core never touches a file system or the network.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inversion::{Inverter, PivotalTuning};
use crate::metrics::{Quality, QualityNetworks};
use crate::networks::arcface::{ArcFace, ArcFaceConfig};
use crate::networks::e4e::{Encoder4Editing, EncoderConfig};
use crate::networks::efficientnet::{EfficientNet, EfficientNetConfig};
use crate::networks::lpips::Lpips;
use crate::networks::resnet::{Resnet, ResnetConfig};
use crate::networks::stylegan2::{Generator, GeneratorConfig};
use crate::networks::xception::{Xception, XceptionConfig};
use crate::networks::{Detector, DetectorNet, MIN_DETECTOR_INPUT, Normalization};
use crate::readback::read_vec;
use crate::search::RowBands;
use crate::weights::TensorFile;

mod loader;
pub use loader::ZooLoader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Generator,
    Encoder,
    Detector,
    /// ArcFace, for the ID metric and regulariser (optional).
    Identity,
    /// LPIPS, for the perceptual metric and regulariser (optional).
    Perceptual,
}

impl Role {
    /// The role as the manifest and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Generator => "generator",
            Role::Encoder => "encoder",
            Role::Detector => "detector",
            Role::Identity => "identity",
            Role::Perceptual => "perceptual",
        }
    }
}

/// A network's architecture with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "architecture", content = "config", rename_all = "snake_case")]
pub enum Architecture {
    Stylegan2(GeneratorConfig),
    E4e(EncoderConfig),
    Xception(XceptionConfig),
    Efficientnet(EfficientNetConfig),
    /// torchvision ResNet (`resnet18`, `resnet34`, `resnet50`, or narrower for the synthetic zoo).
    Resnet(ResnetConfig),
    Arcface(ArcFaceConfig),
    /// LPIPS v0.1 on AlexNet (no configuration).
    Lpips,
}

impl Architecture {
    /// A detector's number of classes (`None` for the other roles).
    pub fn classes(&self) -> Option<usize> {
        match self {
            Architecture::Xception(cfg) => Some(cfg.num_classes),
            Architecture::Efficientnet(cfg) => Some(cfg.num_classes),
            Architecture::Resnet(cfg) => Some(cfg.num_classes),
            _ => None,
        }
    }

    /// What the configuration says, in one line for people ("StyleGAN2 1024 px, W+ 18 × 512, …").
    pub fn summary(&self) -> String {
        let span = |c: &[usize]| match (c.first(), c.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}…{b}"),
            (Some(a), _) => a.to_string(),
            _ => "none".into(),
        };
        match self {
            Architecture::Stylegan2(g) => format!(
                "StyleGAN2 {} px, W+ {} × {}, channels {}, {} mapping layers",
                g.size,
                g.n_latent(),
                g.style_dim,
                span(&g.channels),
                g.n_mlp
            ),
            Architecture::E4e(e) => {
                let depths: Vec<String> = e.backbone.stages.iter().map(|(_, n)| n.to_string()).collect();
                format!(
                    "{:?} {} px in, W+ {} × {}, IR-SE units {} (stem {})",
                    e.variant,
                    e.input_size,
                    e.n_latent,
                    e.style_dim,
                    depths.join("-"),
                    e.backbone.stem
                )
            }
            Architecture::Xception(x) => format!(
                "Xception ({:?}), {} middle blocks, widths {}, {} classes",
                x.layout,
                x.middle_blocks,
                span(&x.widths),
                x.num_classes
            ),
            Architecture::Efficientnet(e) => {
                format!("EfficientNet ({:?}), width {} depth {}, {} classes", e.layout, e.width, e.depth, e.num_classes)
            }
            Architecture::Resnet(r) => {
                format!("ResNet ({:?} blocks {:?}), width {}, {} classes", r.block, r.layers, r.width, r.num_classes)
            }
            Architecture::Arcface(a) => {
                format!(
                    "ArcFace IR-SE ({} stages), {} px in, {}-d embedding",
                    a.backbone.stages.len(),
                    a.input_size,
                    a.embedding
                )
            }
            Architecture::Lpips => "LPIPS v0.1 (AlexNet)".into(),
        }
    }

    fn role(&self) -> Role {
        match self {
            Architecture::Stylegan2(_) => Role::Generator,
            Architecture::E4e(_) => Role::Encoder,
            Architecture::Xception(_) | Architecture::Efficientnet(_) | Architecture::Resnet(_) => Role::Detector,
            Architecture::Arcface(_) => Role::Identity,
            Architecture::Lpips => Role::Perceptual,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkEntry {
    pub name: String,
    pub role: Role,
    #[serde(flatten)]
    pub architecture: Architecture,
    /// Weight file, relative to the manifest.
    pub file: String,
    /// Side of the square input (encoder, detectors) or output (generator).
    pub input_size: usize,
    #[serde(default = "default_norm")]
    pub normalization: Normalization,
    /// Take only the keys under this prefix, stripped (e.g. `decoder.` to load the generator
    /// from an e4e checkpoint, `backbone.` for DeepfakeBench detectors).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The files that hold `file`'s tensors between them, when it is stored in pieces (each a
    /// safetensors file of its own, relative to the manifest): a large network is fetched,
    /// shown and cached piece by piece. Empty: `file` itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
}

impl NetworkEntry {
    /// The files to read for this network: its shards, or its file.
    pub fn stored_files(&self) -> Vec<&str> {
        if self.shards.is_empty() { vec![self.file.as_str()] } else { self.shards.iter().map(String::as_str).collect() }
    }
}

fn default_norm() -> Normalization {
    Normalization::MinusOneOne
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Rows of W+ shared by the generator and the encoder.
    pub n_latent: usize,
    /// The rows of each level (S, M, D) used by the level-wise search.
    pub levels: RowBands,
    pub networks: Vec<NetworkEntry>,
    /// The pivotal tuning a search on this zoo uses unless told otherwise: a zoo whose encoder
    /// drops the forgeries' traces needs it, or its searches have nothing to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivotal_tuning: Option<PivotalTuning>,
    /// What the networks were trained on: the page says it where an image is chosen, and warns
    /// when an image is not of it (a photograph against the synthetic zoo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

/// The images a zoo's networks know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub kind: DomainKind,
    /// In words, for people ("synthetic faces of the project's procedural world, 64 px").
    pub trained_on: String,
    /// The synthetic world's forgery strengths, when the zoo was trained on it (absent in
    /// zoos made before the strengths were a parameter: those are
    /// [`ForgeryStrength::SUBTLE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgeries: Option<crate::synth::ForgeryStrength>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainKind {
    /// The synthetic face world of `unforge synth`: its scores mean nothing on photographs.
    Synthetic,
    /// Photographs of real faces (the official checkpoints: FFHQ, FaceForensics++).
    Photographs,
    /// Seeded random weights: only the mechanics mean anything.
    Untrained,
}

impl Manifest {
    /// The synthetic world's forgery strengths this zoo was trained at (the default for a zoo
    /// that does not say).
    pub fn forgeries(&self) -> crate::synth::ForgeryStrength {
        self.domain.as_ref().and_then(|d| d.forgeries).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| Error::manifest(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }

    /// A manifest for `networks` as one set: the W+ rows from the generator, the paper's thirds
    /// as the levels, and every size checked against the generator's.
    pub fn for_networks(name: &str, description: &str, networks: Vec<NetworkEntry>) -> Result<Self> {
        let n_latent = match networks.iter().find(|n| n.role == Role::Generator).map(|n| &n.architecture) {
            Some(Architecture::Stylegan2(g)) => g.n_latent(),
            _ => return Err(Error::manifest("a zoo needs a generator (a StyleGAN2, or the e4e file's decoder)")),
        };
        let manifest = Self {
            name: name.into(),
            description: description.into(),
            n_latent,
            levels: RowBands::thirds(n_latent),
            networks,
            pivotal_tuning: None,
            domain: None,
        };
        manifest.validate()?;
        Ok(manifest)
    }

    /// This manifest with `entry` added, or in place of the network of the same name (or of the
    /// same role, for the roles a zoo has one of). A new generator brings its own W+ rows, and
    /// the levels become its thirds when the old ones no longer fit. The result is validated as
    /// one set, so a clash names both sides.
    pub fn with_network(&self, entry: NetworkEntry) -> Result<Self> {
        let mut m = self.clone();
        let single = entry.role != Role::Detector;
        match m.networks.iter_mut().find(|n| n.name == entry.name || (single && n.role == entry.role)) {
            Some(slot) => *slot = entry.clone(),
            None => m.networks.push(entry.clone()),
        }
        if let Some(clash) = m.networks.iter().find(|n| n.file == entry.file && n.name != entry.name) {
            return Err(Error::manifest(format!(
                "network `{}` would write `{}`, the weight file of network `{}`",
                entry.name, entry.file, clash.name
            )));
        }
        if let Architecture::Stylegan2(g) = &entry.architecture
            && g.n_latent() != m.n_latent
        {
            m.n_latent = g.n_latent();
            if m.levels.validate(m.n_latent).is_err() {
                m.levels = RowBands::thirds(m.n_latent);
            }
        }
        m.validate()?;
        Ok(m)
    }

    fn one(&self, role: Role) -> Result<&NetworkEntry> {
        let found: Vec<_> = self.networks.iter().filter(|n| n.role == role).collect();
        match found.as_slice() {
            [one] => Ok(one),
            _ => Err(Error::manifest(format!("needs exactly one {role:?} network, found {}", found.len()))),
        }
    }

    pub fn generator(&self) -> Result<&NetworkEntry> {
        self.one(Role::Generator)
    }

    pub fn encoder(&self) -> Result<&NetworkEntry> {
        self.one(Role::Encoder)
    }

    /// The network of an optional role, if the zoo has one (never more than one).
    pub fn optional(&self, role: Role) -> Result<Option<&NetworkEntry>> {
        let found: Vec<_> = self.networks.iter().filter(|n| n.role == role).collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(Error::manifest(format!("has {} {role:?} networks, at most one is allowed", found.len()))),
        }
    }

    pub fn detectors(&self) -> impl Iterator<Item = &NetworkEntry> {
        self.networks.iter().filter(|n| n.role == Role::Detector)
    }

    /// Every file the zoo's weights are stored in (each shard on its own), each once, in the
    /// manifest's order.
    pub fn files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        for f in self.networks.iter().flat_map(NetworkEntry::stored_files) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        files
    }

    /// Checks what can be checked without weights: roles, row counts, sizes.
    pub fn validate(&self) -> Result<()> {
        for n in &self.networks {
            if n.architecture.role() != n.role {
                return Err(Error::manifest(format!(
                    "network `{}`: a {:?} cannot be a {:?}",
                    n.name,
                    n.architecture.role(),
                    n.role
                )));
            }
            for file in std::iter::once(&n.file).chain(&n.shards) {
                if file.is_empty() || file.contains("..") || file.starts_with('/') || file.contains('\\') {
                    return Err(Error::manifest(format!(
                        "network `{}`: file `{file}` must be a plain relative path",
                        n.name
                    )));
                }
            }
        }
        let generator = self.generator()?;
        let encoder = self.encoder()?;
        if self.detectors().next().is_none() {
            return Err(Error::manifest("needs at least one detector"));
        }
        let Architecture::Stylegan2(g) = &generator.architecture else { unreachable!("role checked") };
        g.validate()?;
        if let Architecture::E4e(e) = &encoder.architecture {
            e.validate()?;
        }
        if g.size != generator.input_size {
            return Err(Error::manifest(format!(
                "generator `{}`: input_size {} differs from its size {}",
                generator.name, generator.input_size, g.size
            )));
        }
        if g.n_latent() != self.n_latent {
            return Err(Error::manifest(format!(
                "n_latent {} differs from the {} W+ rows of generator `{}` ({} px)",
                self.n_latent,
                g.n_latent(),
                generator.name,
                g.size
            )));
        }
        for other in self.networks.iter().filter(|n| matches!(n.role, Role::Encoder | Role::Detector)) {
            fits_generator(generator, other)?;
        }
        let mut names: Vec<&str> = self.networks.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::manifest(format!("two networks are named `{}`", w[0])));
        }
        self.optional(Role::Identity)?;
        self.optional(Role::Perceptual)?;
        if let Some(Architecture::Arcface(cfg)) = self.optional(Role::Identity)?.map(|n| &n.architecture) {
            cfg.validate()?;
        }
        self.levels.validate(self.n_latent)?;
        if let Some(t) = &self.pivotal_tuning {
            t.validate().map_err(|e| Error::manifest(format!("pivotal_tuning: {e}")))?;
        }
        Ok(())
    }
}

/// Whether an encoder or a detector works with `generator`: the encoder predicts the
/// generator's W+ (its rows and width), a detector takes the generator's output at a size that
/// divides it. The message names both networks and both numbers.
pub fn fits_generator(generator: &NetworkEntry, other: &NetworkEntry) -> Result<()> {
    let Architecture::Stylegan2(g) = &generator.architecture else {
        return Err(Error::manifest(format!("network `{}` is not a generator", generator.name)));
    };
    let (gen_name, size) = (&generator.name, g.size);
    match &other.architecture {
        Architecture::E4e(e) => {
            if e.n_latent != g.n_latent() {
                return Err(Error::manifest(format!(
                    "encoder `{}` predicts {} W+ rows, generator `{gen_name}` ({size} px) takes {}: the encoder was \
                     trained for another generator",
                    other.name,
                    e.n_latent,
                    g.n_latent()
                )));
            }
            if e.style_dim != g.style_dim {
                return Err(Error::manifest(format!(
                    "encoder `{}` predicts W+ rows of {} values, generator `{gen_name}` takes {}",
                    other.name, e.style_dim, g.style_dim
                )));
            }
            if e.input_size != other.input_size {
                return Err(Error::manifest(format!(
                    "encoder `{}`: input_size {} differs from its configuration's {}",
                    other.name, other.input_size, e.input_size
                )));
            }
        }
        Architecture::Xception(_) | Architecture::Efficientnet(_) | Architecture::Resnet(_) => {
            let side = other.input_size;
            if side > size {
                return Err(Error::manifest(format!(
                    "detector `{}` takes {side} px, more than generator `{gen_name}` makes ({size} px): a \
                     counterfactual cannot be sharper than its generator; give the detector's input size \
                     (--input-size) at most {size}",
                    other.name
                )));
            }
            if side == 0 || size % side != 0 {
                return Err(Error::manifest(format!(
                    "detector `{}` takes {side} px, which does not divide generator `{gen_name}`'s {size} px: the \
                     generator's output is reduced to the detector's size by whole-pixel averaging",
                    other.name
                )));
            }
            if side < MIN_DETECTOR_INPUT {
                return Err(Error::manifest(format!(
                    "detector `{}` takes {side} px, less than the {MIN_DETECTOR_INPUT} px a zoo's detectors need",
                    other.name
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Weight files by their manifest name.
pub type ZooFiles = BTreeMap<String, Vec<u8>>;

/// The host tensors of one network from files held in memory (its shards merged, its prefix
/// applied): what the tools that retrain or rewrite a network start from.
pub fn network_tensors(entry: &NetworkEntry, files: &ZooFiles) -> Result<TensorFile> {
    let tensors = gather(entry, |name| {
        files.get(name).map(|bytes| TensorFile::from_safetensors(bytes, name).map(|f| f.tensors)).transpose()
    })?;
    Ok(TensorFile { tensors })
}

/// One network's tensors, however they are held: `stored(name)` gives the tensors of each of
/// its files (its file, or each shard in turn; `None` when the file is missing). The shards are
/// merged (a key in two of them is an error naming the later) and the prefix is applied.
fn gather<T>(
    entry: &NetworkEntry,
    mut stored: impl FnMut(&str) -> Result<Option<BTreeMap<String, T>>>,
) -> Result<BTreeMap<String, T>> {
    let mut all = BTreeMap::new();
    for name in entry.stored_files() {
        let tensors = stored(name)?
            .ok_or_else(|| Error::manifest(format!("network `{}`: weight file `{name}` is missing", entry.name)))?;
        for (key, tensor) in tensors {
            if all.insert(key.clone(), tensor).is_some() {
                return Err(Error::WeightFile {
                    origin: name.into(),
                    reason: format!("tensor `{key}` is in another shard too"),
                });
            }
        }
    }
    Ok(crate::weights::under_prefix(all, &entry.prefix))
}

/// A loaded zoo: every network built and bound to its weights on one device.
#[derive(Debug)]
pub struct Zoo {
    pub manifest: Manifest,
    pub generator: Generator,
    pub encoder: Encoder4Editing,
    pub detectors: Vec<(String, Detector)>,
    pub encoder_size: usize,
    /// ArcFace for ID similarity, when the zoo has one.
    pub identity: Option<ArcFace>,
    /// LPIPS, when the zoo has it.
    pub perceptual: Option<Lpips>,
    /// The device every network is bound on.
    pub device: Device,
    /// FNV-1a of the generator's weight file: a W+ code means something only to the generator
    /// it was made with, and saved codes carry this to say which.
    pub generator_fingerprint: String,
}

impl Zoo {
    /// Builds every network of `manifest` from weight files held in memory.
    pub fn load(manifest: Manifest, files: &ZooFiles, device: &Device) -> Result<Self> {
        let mut loader = ZooLoader::new(manifest, device)?;
        for name in loader.files() {
            if let Some(bytes) = files.get(&name) {
                loader.add(&name, bytes)?;
            }
        }
        loader.finish()
    }

    /// The encoder and the generator, as one way into W+.
    pub fn inverter(&self) -> Inverter<'_> {
        Inverter { encoder: &self.encoder, generator: &self.generator, encoder_size: self.encoder_size }
    }

    /// The zoo's LPIPS and ArcFace, where it has them.
    pub fn quality_networks(&self) -> QualityNetworks<'_> {
        QualityNetworks { perceptual: self.perceptual.as_ref(), identity: self.identity.as_ref() }
    }

    /// Every metric of `changed` against `reference` (`[1, 3, S, S]` in [-1, 1]), LPIPS and ID
    /// with the zoo's networks.
    pub async fn quality(&self, reference: Tensor<4>, changed: Tensor<4>) -> Result<Quality> {
        Quality::measure_with(self.quality_networks(), reference, changed).await
    }

    /// P(fake) of `image` under every detector, in the zoo's order.
    pub async fn score_all(&self, image: Tensor<4>) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.detectors.len());
        for (_, det) in &self.detectors {
            out.push(read_vec(det.p_fake(image.clone())).await?[0]);
        }
        Ok(out)
    }

    /// The first detector that cannot score a preview of `side` px (its input is larger, or
    /// does not divide it), with its input side.
    pub fn preview_clash(&self, side: usize) -> Option<(&str, usize)> {
        self.detectors
            .iter()
            .find(|(_, d)| side < d.input_size || !side.is_multiple_of(d.input_size))
            .map(|(name, d)| (name.as_str(), d.input_size))
    }

    /// The preview sides a search on this zoo may run through, largest first: powers of two
    /// below the generator's side that every detector can score.
    pub fn preview_sizes(&self) -> Vec<usize> {
        let below = (2..usize::BITS).map(|k| 1usize << k).take_while(|&s| s < self.generator.size);
        let mut sizes: Vec<usize> = below.filter(|&s| self.preview_clash(s).is_none()).collect();
        sizes.reverse();
        sizes
    }

    /// The detectors' names, in the zoo's order.
    pub fn detector_names(&self) -> Vec<String> {
        self.detectors.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn detector(&self, name: &str) -> Result<&Detector> {
        self.detectors.iter().find(|(n, _)| n == name).map(|(_, d)| d).ok_or_else(|| {
            let known: Vec<_> = self.detectors.iter().map(|(n, _)| n.as_str()).collect();
            Error::config(format!("no detector named `{name}` (the zoo has: {})", known.join(", ")))
        })
    }
}

pub fn build_detector(entry: &NetworkEntry, vb: &crate::weights::VarBuilder) -> Result<Detector> {
    let net = match &entry.architecture {
        Architecture::Xception(cfg) => DetectorNet::Xception(Xception::new(vb, cfg)?),
        Architecture::Efficientnet(cfg) => DetectorNet::EfficientNet(EfficientNet::new(vb, cfg)?),
        Architecture::Resnet(cfg) => DetectorNet::Resnet(Resnet::new(vb, cfg)?),
        other => {
            return Err(Error::manifest(format!("network `{}`: {:?} is not a detector", entry.name, other.role())));
        }
    };
    Ok(Detector { net, input_size: entry.input_size, normalization: entry.normalization })
}

/// Builds the network an entry describes on `vb` and drops it: binds a checkpoint strictly
/// (or draws seeded weights) without keeping the network.
pub fn bind_only(entry: &NetworkEntry, vb: &crate::weights::VarBuilder) -> Result<()> {
    match &entry.architecture {
        Architecture::Stylegan2(cfg) => drop(Generator::new(vb, cfg)?),
        Architecture::E4e(cfg) => drop(Encoder4Editing::new(vb, cfg)?),
        Architecture::Xception(_) | Architecture::Efficientnet(_) | Architecture::Resnet(_) => {
            drop(build_detector(entry, vb)?)
        }
        Architecture::Arcface(cfg) => drop(ArcFace::new(vb, cfg)?),
        Architecture::Lpips => drop(Lpips::new(vb)),
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn read_manifest(dir: &std::path::Path) -> Result<Manifest> {
    let path = dir.join("zoo.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    Manifest::from_json(&text).map_err(|e| Error::manifest(format!("{}: {e}", path.display())))
}

/// Reads a zoo from a directory holding `zoo.json` and its weight files.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_dir(dir: &std::path::Path) -> Result<(Manifest, ZooFiles)> {
    let manifest = read_manifest(dir)?;
    let mut files = ZooFiles::new();
    for f in manifest.files() {
        let path = dir.join(f);
        let bytes =
            std::fs::read(&path).map_err(|e| Error::manifest(format!("weight file {}: {e}", path.display())))?;
        files.insert(f.to_string(), bytes);
    }
    Ok((manifest, files))
}

/// Loads the zoo in `dir` onto `device`, each weight file streamed from disk into the
/// networks a tensor at a time, never held whole in memory.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_dir(dir: &std::path::Path, device: &Device) -> Result<Zoo> {
    let mut loader = ZooLoader::new(read_manifest(dir)?, device)?;
    for name in loader.files() {
        let path = dir.join(&name);
        let file =
            std::fs::File::open(&path).map_err(|e| Error::manifest(format!("weight file {}: {e}", path.display())))?;
        loader.read(&name, file).map_err(|e| match e {
            Error::Io { reason, .. } => Error::Io { path: path.display().to_string(), reason },
            other => other,
        })?;
    }
    loader.finish()
}

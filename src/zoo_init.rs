//! A seeded zoo of small untrained networks: the same architectures and key names as the
//! real checkpoints, at sizes that load in a blink. It exercises every code path (loading,
//! inversion, search, rendering) before any weights are trained or converted.

use burn::tensor::Device;

use crate::error::Result;
use crate::image::RgbaImage;
use crate::networks::Normalization;
use crate::networks::arcface::ArcFaceConfig;
use crate::networks::e4e::EncoderConfig;
use crate::networks::efficientnet::{EfficientNetConfig, EfficientNetLayout};
use crate::networks::irse::IrSeConfig;
use crate::networks::resnet::{ResnetBlock, ResnetConfig};
use crate::networks::stylegan2::GeneratorConfig;
use crate::networks::xception::XceptionConfig;
use crate::rng::SeededRng;
use crate::search::RowBands;
use crate::weights::{HostTensor, StoredPrecision, TensorFile, WeightSource};
use crate::zoo::{Architecture, Domain, DomainKind, Manifest, NetworkEntry, Role, Zoo, ZooFiles, bind_only};

/// Sizes of the seeded zoo.
#[derive(Debug, Clone)]
pub struct TinyZooSpec {
    pub size: usize,
    pub style_dim: usize,
    /// The encoder's width: its backbone's channels are this many times the base (stem 16,
    /// stages 16/24/32/48); 1 is the first zoos' encoder.
    pub encoder_width: usize,
    pub seed: u64,
    pub precision: StoredPrecision,
    /// Add a small ArcFace and LPIPS (for the ID and LPIPS metrics and regularisers).
    pub metric_networks: bool,
}

impl Default for TinyZooSpec {
    fn default() -> Self {
        Self {
            size: 64,
            style_dim: 32,
            encoder_width: 1,
            seed: 7,
            precision: StoredPrecision::F16,
            metric_networks: false,
        }
    }
}

/// The small IR-SE backbone of the encoder and the identity network: stem 16, one unit per
/// stage at 16/24/32/48 channels, each times `width`.
fn small_irse(width: usize) -> IrSeConfig {
    IrSeConfig { stem: 16 * width, stages: [16, 24, 32, 48].map(|c| (c * width, 1)).to_vec(), se_reduction: 4 }
}

impl TinyZooSpec {
    pub fn generator(&self) -> GeneratorConfig {
        let levels = self.size.trailing_zeros() as usize - 1;
        let channels = (0..levels).map(|l| (64usize >> (l / 2)).max(16)).collect();
        GeneratorConfig { size: self.size, style_dim: self.style_dim, n_mlp: 2, channels, lr_mlp: 0.01 }
    }

    pub fn encoder(&self) -> EncoderConfig {
        EncoderConfig {
            variant: Default::default(),
            backbone: small_irse(self.encoder_width),
            input_size: self.size,
            n_latent: self.generator().n_latent(),
            style_dim: self.style_dim,
            coarse_ind: 3,
            middle_ind: 7.min(self.generator().n_latent()),
        }
    }

    pub fn detector(&self) -> XceptionConfig {
        XceptionConfig {
            widths: [8, 16, 24, 32, 48, 64, 96, 128],
            middle_blocks: 1,
            num_classes: 2,
            layout: Default::default(),
        }
    }

    /// A narrow, shallow EfficientNet (B0's stages at width 0.25, depth 0.34) in the
    /// DeepfakeBench layout. Its stem has no padding, so the blocks see ⌊(S−1)/2⌋ pixels; static
    /// pads computed for S − 2 match that size exactly.
    pub fn efficientnet(&self) -> EfficientNetConfig {
        EfficientNetConfig {
            width: 0.25,
            depth: 0.34,
            layout: EfficientNetLayout::DeepfakeBench,
            num_classes: 2,
            assumed_size: self.size - 2,
        }
    }

    /// A ResNet with one basic block per layer at width 16 (ResNet-18's layout, a quarter wide).
    pub fn resnet(&self) -> ResnetConfig {
        ResnetConfig { block: ResnetBlock::Basic, layers: [1, 1, 1, 1], width: 16, num_classes: 2 }
    }

    /// IR-SE with one unit per stage at 32 px: an ArcFace with the real layout, toy-sized.
    pub fn arcface(&self) -> ArcFaceConfig {
        ArcFaceConfig { backbone: small_irse(1), input_size: 32, embedding: 64 }
    }

    /// The identity network's entry (ArcFace IR-SE at 32 px), as `metric_networks` adds it.
    pub fn identity_entry(&self) -> NetworkEntry {
        NetworkEntry {
            name: "arcface".into(),
            role: Role::Identity,
            architecture: Architecture::Arcface(self.arcface()),
            file: "arcface.safetensors".into(),
            input_size: 32,
            normalization: Normalization::MinusOneOne,
            prefix: String::new(),
            shards: Vec::new(),
        }
    }

    pub fn manifest(&self) -> Manifest {
        let n_latent = self.generator().n_latent();
        let entry = |name: &str, role, architecture, file: &str, input_size| NetworkEntry {
            name: name.into(),
            role,
            architecture,
            file: file.into(),
            input_size,
            normalization: Normalization::MinusOneOne,
            prefix: String::new(),
            shards: Vec::new(),
        };
        Manifest {
            name: "tiny-seeded".into(),
            description: format!(
                "Untrained networks drawn from seed {}: real architectures and key names at toy sizes, for tests and the skeleton demo.",
                self.seed
            ),
            n_latent,
            levels: RowBands::thirds(n_latent),
            pivotal_tuning: None,
            domain: Some(Domain {
                kind: DomainKind::Untrained,
                trained_on: "nothing: seeded random weights, for testing the mechanics".into(),
                forgeries: None,
            }),
            networks: [
                entry(
                    "stylegan2",
                    Role::Generator,
                    Architecture::Stylegan2(self.generator()),
                    "generator.safetensors",
                    self.size,
                ),
                entry("e4e", Role::Encoder, Architecture::E4e(self.encoder()), "encoder.safetensors", self.size),
                entry(
                    "xception",
                    Role::Detector,
                    Architecture::Xception(self.detector()),
                    "xception.safetensors",
                    self.size,
                ),
                entry(
                    "efficientnet",
                    Role::Detector,
                    Architecture::Efficientnet(self.efficientnet()),
                    "efficientnet.safetensors",
                    self.size,
                ),
                entry("resnet", Role::Detector, Architecture::Resnet(self.resnet()), "resnet.safetensors", self.size),
            ]
            .into_iter()
            .chain(
                self.metric_networks
                    .then(|| {
                        [
                            self.identity_entry(),
                            entry("lpips", Role::Perceptual, Architecture::Lpips, "lpips.safetensors", self.size),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        }
    }

    /// Builds every network from its seed and returns the manifest with the weight files.
    pub fn build(&self) -> Result<(Manifest, ZooFiles)> {
        // Weights are drawn on the host; the device only holds the throwaway networks.
        let device = Device::flex();
        let manifest = self.manifest();
        let mut files = ZooFiles::new();
        for (i, entry) in manifest.networks.iter().enumerate() {
            let source = WeightSource::seeded(self.seed.wrapping_mul(1000).wrapping_add(i as u64));
            bind_only(entry, &source.root(&device))?;
            let mut tensors: TensorFile = source.finish()?;
            if entry.architecture == Architecture::Lpips {
                // LPIPS's linear heads are non-negative (the package clamps them), so a distance
                // is never negative.
                for (key, t) in tensors.tensors.iter_mut().filter(|(k, _)| k.starts_with("lin")) {
                    debug_assert!(key.ends_with("weight"));
                    t.data.iter_mut().for_each(|v| *v = v.abs());
                }
            }
            files.insert(entry.file.clone(), tensors.to_safetensors(StoredPrecision::F32));
        }
        self.calibrate_heads(&manifest, &mut files)?;
        for bytes in files.values_mut() {
            *bytes = TensorFile::from_safetensors(bytes, "seeded zoo")?.to_safetensors(self.precision);
        }
        Ok((manifest, files))
    }

    /// An untrained detector's logits hardly depend on its input. Rescale each head so that,
    /// over inversions of a few seeded images, the logit margin (fake − real) has mean
    /// `HEAD_MEAN` and unit spread: P(fake) then starts near 0.8 and responds to the search.
    fn calibrate_heads(&self, manifest: &Manifest, files: &mut ZooFiles) -> Result<()> {
        const HEAD_MEAN: f32 = 1.5;
        let device = Device::flex();
        let zoo = Zoo::load(manifest.clone(), files, &device)?;
        let mut rng = SeededRng::new(self.seed ^ 0xCA11);
        let images: Vec<RgbaImage> = (0..12).map(|_| seeded_blob_image(&mut rng, self.size)).collect();
        let recs: Vec<_> = images.iter().map(|img| zoo.inverter().invert(img, &device).reconstruction).collect();
        let batch = burn::tensor::Tensor::cat(recs, 0);
        for (entry, (_, det)) in manifest.detectors().zip(&zoo.detectors) {
            let logits = crate::readback::block_on_ready(crate::readback::read_vec(det.logits(batch.clone())))?;
            let margins: Vec<f32> = logits.chunks(2).map(|l| l[1] - l[0]).collect();
            let n = margins.len() as f32;
            let mean = margins.iter().sum::<f32>() / n;
            let std = (margins.iter().map(|m| (m - mean).powi(2)).sum::<f32>() / n).sqrt().max(1e-6);
            let scale = 1.0 / std;
            let mut t = TensorFile::from_safetensors(&files[&entry.file], &entry.file)?;
            let head = match entry.architecture {
                Architecture::Xception(_) => "last_linear",
                Architecture::Resnet(_) => "fc",
                _ => "last_layer",
            };
            let w = t.tensors.get_mut(&format!("{head}.weight")).expect("detector head");
            w.data.iter_mut().for_each(|v| *v *= scale);
            let b = t.tensors.get_mut(&format!("{head}.bias")).expect("detector head");
            b.data.iter_mut().for_each(|v| *v *= scale);
            b.data[1] += HEAD_MEAN - scale * mean;
            files.insert(entry.file.clone(), t.to_safetensors(StoredPrecision::F32));
        }
        Ok(())
    }
}

/// A smooth random image: a light ellipse on a graded background.
pub fn seeded_blob_image(rng: &mut SeededRng, size: usize) -> RgbaImage {
    let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
    let fg = [0.6 + 0.4 * rng.uniform(), 0.4 + 0.4 * rng.uniform(), 0.3 + 0.4 * rng.uniform()];
    let (cx, cy, rx, ry) =
        (0.4 + 0.2 * rng.uniform(), 0.4 + 0.2 * rng.uniform(), 0.2 + 0.1 * rng.uniform(), 0.25 + 0.1 * rng.uniform());
    let mut data = Vec::with_capacity(size * size * 4);
    for y in 0..size {
        for x in 0..size {
            let (u, v) = (x as f32 / size as f32, y as f32 / size as f32);
            let inside = ((u - cx) / rx).powi(2) + ((v - cy) / ry).powi(2) < 1.0;
            for c in 0..3 {
                let val = if inside { fg[c] } else { bg[c] * (0.6 + 0.4 * v) };
                data.push((val * 255.0) as u8);
            }
            data.push(255);
        }
    }
    RgbaImage { width: size, height: size, data }
}

/// Files shaped like the official checkpoints, with keyed weights (the parity fixtures'): a
/// rosinality StyleGAN2 (`g_ema.` and a `latent_avg` of one row), an e4e (`encoder.`,
/// `decoder.`, `latent_avg` of every row) for it, and an Artifact-Eraser Xception. They try the
/// whole path from the official files to a zoo, at the official sizes, without those files;
/// their networks are untrained.
pub fn official_shaped(size: usize, channel_multiplier: usize, seed: u64) -> Result<Vec<(String, TensorFile)>> {
    let device = Device::flex();
    let keyed = |i: u64, build: &dyn Fn(&WeightSource) -> Result<()>| -> Result<TensorFile> {
        let source = WeightSource::keyed(seed.wrapping_mul(1000).wrapping_add(i));
        build(&source)?;
        source.finish()
    };
    let g_cfg = GeneratorConfig::rosinality(size, channel_multiplier);
    let generator = keyed(0, &|s| crate::networks::stylegan2::Generator::new(&s.root(&device), &g_cfg).map(drop))?;
    let e_cfg = EncoderConfig::e4e(size);
    let encoder = keyed(1, &|s| crate::networks::e4e::Encoder4Editing::new(&s.root(&device), &e_cfg).map(drop))?;
    let x_cfg = XceptionConfig::original(2);
    let xception = keyed(2, &|s| crate::networks::xception::Xception::new(&s.root(&device), &x_cfg).map(drop))?;
    let mut stylegan2 = TensorFile::default();
    stylegan2.tensors.extend(generator.tensors.iter().map(|(k, v)| (format!("g_ema.{k}"), v.clone())));
    let avg = &encoder.tensors["latent_avg"];
    stylegan2
        .tensors
        .insert("latent_avg".into(), HostTensor::new(vec![g_cfg.style_dim], avg.data[..g_cfg.style_dim].to_vec()));
    let mut e4e = encoder;
    e4e.tensors.extend(generator.tensors.into_iter().map(|(k, v)| (format!("decoder.{k}"), v)));
    Ok(vec![
        ("stylegan2-ffhq-config-f.safetensors".into(), stylegan2),
        ("e4e_ffhq_encode.safetensors".into(), e4e),
        ("xception.safetensors".into(), xception),
    ])
}

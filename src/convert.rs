//! Checkpoint conversion: PyTorch `.pt`/`.pth` (zip format) or safetensors in, one network's
//! tensors under the original key names plus its manifest entry out. The configuration is
//! inferred from the shapes and then proven by binding the tensors strictly.

use std::path::Path;

use half::{bf16, f16};
use pytorch_reader::{DType, PytorchReader};

use crate::error::{Error, Result};
use crate::networks::Normalization;
use crate::networks::arcface::ArcFaceConfig;
use crate::networks::e4e::{EncoderConfig, EncoderVariant};
use crate::networks::efficientnet::{EfficientNetConfig, EfficientNetLayout};
use crate::networks::irse::IrSeConfig;
use crate::networks::resnet::{ResnetBlock, ResnetConfig};
use crate::networks::stylegan2::GeneratorConfig;
use crate::networks::xception::{XceptionConfig, XceptionLayout};
use crate::weights::{HostTensor, TensorFile, WeightSource};
use crate::zoo::{Architecture, NetworkEntry, Role};

/// Where detector checkpoints keep their network: DeepfakeBench's `backbone.` (under
/// `module.` when saved from DDP), or nothing.
const DETECTOR_PREFIXES: &[&str] = &["backbone.", "module.backbone.", "module.", "model.", ""];

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::WeightFile { origin: path.display().to_string(), reason: reason.into() }
}

/// Every float tensor of a checkpoint, keyed by its full dotted path.
pub fn read_checkpoint(path: &Path) -> Result<TensorFile> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    if bytes.len() > 8 && !bytes.starts_with(b"PK\x03\x04") && bytes[8] == b'{' {
        return TensorFile::from_safetensors(&bytes, &path.display().to_string());
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(bad(
            path,
            format!(
                "not a zip-format PyTorch checkpoint (saved by torch < 1.6, or not a checkpoint at all). \
                 Re-save it once with PyTorch ≥ 1.6: python -c \"import torch; torch.save(torch.load('{0}', map_location='cpu', weights_only=False), '{0}.zip.pt')\"",
                path.display()
            ),
        ));
    }
    let reader = PytorchReader::new(path).map_err(|e| bad(path, e.to_string()))?;
    let mut tensors = TensorFile::default();
    for (name, t) in reader.tensors() {
        let raw = t.read().map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
        let data: Vec<f32> = match t.dtype() {
            DType::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            DType::F16 => raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::BF16 => raw.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::F64 => {
                raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()
            }
            _ => continue,
        };
        if data.len() != t.num_elements() {
            return Err(bad(path, format!("tensor `{name}`: {} values for shape {:?}", data.len(), t.shape())));
        }
        tensors.tensors.insert(name.clone(), HostTensor::new(t.shape().to_vec(), data));
    }
    if tensors.tensors.is_empty() {
        return Err(bad(path, "holds no float tensors"));
    }
    Ok(tensors)
}

/// The prefix under which `probe` sits, among `candidates` (the first that matches).
fn find_prefix(t: &TensorFile, probe: &str, candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|p| t.tensors.contains_key(&format!("{p}{probe}"))).map(|p| p.to_string())
}

fn shape<'a>(t: &'a TensorFile, key: &str) -> Result<&'a [usize]> {
    t.tensors
        .get(key)
        .map(|h| h.shape.as_slice())
        .ok_or_else(|| Error::config(format!("the checkpoint has no `{key}`")))
}

fn count(t: &TensorFile, pattern: impl Fn(usize) -> String) -> usize {
    (0..).take_while(|i| t.tensors.contains_key(&pattern(*i))).count()
}

/// The IR-SE stages from the body's shapes: consecutive units of one depth form a stage.
fn infer_irse(t: &TensorFile, prefix: &str) -> Result<IrSeConfig> {
    let stem = shape(t, &format!("{prefix}input_layer.0.weight"))?[0];
    let units = count(t, |i| format!("{prefix}body.{i}.res_layer.1.weight"));
    let mut stages: Vec<(usize, usize)> = Vec::new();
    for i in 0..units {
        let depth = shape(t, &format!("{prefix}body.{i}.res_layer.1.weight"))?[0];
        match stages.last_mut() {
            Some((d, n)) if *d == depth => *n += 1,
            _ => stages.push((depth, 1)),
        }
    }
    let fc1 = shape(t, &format!("{prefix}body.0.res_layer.5.fc1.weight"))?;
    let cfg = IrSeConfig { stem, stages, se_reduction: fc1[1] / fc1[0].max(1) };
    cfg.validate()
        .map_err(|e| Error::config(format!("cannot infer the IR-SE backbone from the body's shapes: {e}")))?;
    Ok(cfg)
}

/// A converted network: its tensors (prefix removed) and its manifest entry.
pub struct Converted {
    pub tensors: TensorFile,
    pub entry: NetworkEntry,
}

/// What the caller knows about a network that its tensors do not say.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub role: Role,
    /// Name in the manifest.
    pub name: String,
    /// Weight file name in the manifest.
    pub file: String,
    /// Input side of detectors (default 256); an encoder's is inferred (and checked when given).
    pub input_size: Option<usize>,
    pub normalization: Normalization,
    /// e4e and pSp encoders have the same keys; only the forward differs.
    pub encoder_variant: EncoderVariant,
}

/// Infers the configuration of a network in `all`, then binds it strictly.
pub fn convert(all: TensorFile, opts: &ConvertOptions) -> Result<Converted> {
    let input_size = opts.input_size;
    let has = |key: &str| find_prefix(&all, key, DETECTOR_PREFIXES).is_some();
    let (resnet_keys, xception_keys) = (has("layer1.0.conv1.weight"), has("block1.rep.0.conv1.weight"));
    let (architecture, tensors, size) = match opts.role {
        Role::Generator => generator(all)?,
        Role::Encoder => encoder(all, opts)?,
        Role::Identity => identity(all, input_size)?,
        Role::Perceptual => perceptual(all, input_size)?,
        Role::Detector if resnet_keys => resnet(all, input_size)?,
        Role::Detector if !xception_keys => efficientnet(all, input_size)?,
        Role::Detector => xception(all, input_size)?,
    };
    let source = WeightSource::checkpoint(tensors, opts.file.clone());
    let entry = NetworkEntry {
        name: opts.name.clone(),
        role: opts.role,
        architecture,
        file: opts.file.clone(),
        input_size: size,
        normalization: opts.normalization,
        prefix: String::new(),
        shards: Vec::new(),
    };
    crate::zoo::bind_only(&entry, &source.root(&burn::tensor::Device::flex()))?;
    let tensors = source.finish()?;
    Ok(Converted { tensors, entry })
}

/// What a checkpoint holds for one role: the architecture, its tensors (prefix stripped) and
/// the side of its square input or output.
type Inferred = (Architecture, TensorFile, usize);

/// rosinality's StyleGAN2 generator (or e4e's `decoder.`): size, widths and mapping depth from the shapes.
fn generator(all: TensorFile) -> Result<Inferred> {
    let p = find_prefix(&all, "conv1.conv.weight", &["g_ema.", "decoder.", "state_dict.decoder.", "module.", ""])
        .ok_or_else(|| {
            Error::config(
                "no StyleGAN2 generator in this checkpoint (looked for `conv1.conv.weight` under g_ema., decoder., …)",
            )
        })?;
    let t = all.select_prefix(&p);
    let n_up = count(&t, |k| format!("to_rgbs.{k}.conv.weight"));
    let style_dim = shape(&t, "style.1.weight")?[1];
    let mut channels = vec![shape(&t, "conv1.conv.weight")?[1]];
    for k in 0..n_up {
        channels.push(shape(&t, &format!("convs.{}.conv.weight", 2 * k))?[1]);
    }
    let cfg = GeneratorConfig {
        size: 4 << n_up,
        style_dim,
        n_mlp: count(&t, |i| format!("style.{}.weight", i + 1)),
        channels,
        lr_mlp: 0.01,
    };
    let size = cfg.size;
    Ok((Architecture::Stylegan2(cfg), t, size))
}

/// e4e / pSp's encoder with its `latent_avg`: W+ rows, IR-SE stages and width from the shapes.
fn encoder(all: TensorFile, opts: &ConvertOptions) -> Result<Inferred> {
    let p = find_prefix(&all, "encoder.input_layer.0.weight", &["state_dict.", "module.", ""]).ok_or_else(|| {
        Error::config("no e4e encoder in this checkpoint (looked for `encoder.input_layer.0.weight`)")
    })?;
    // Taken before the prefix is: it sits at the top level, beside the prefixed keys (and the
    // checkpoint is not copied, a full-size e4e being a gigabyte).
    let avg = all.tensors.get("latent_avg").cloned();
    let mut t = all.select_prefix(&p);
    t.tensors.retain(|k, _| k.starts_with("encoder."));
    let n_latent = count(&t, |i| format!("encoder.styles.{i}.linear.weight"));
    let style_dim = shape(&t, "encoder.styles.0.linear.weight")?[0];
    let avg = avg.ok_or_else(|| Error::config("the e4e checkpoint has no top-level `latent_avg`"))?;
    // rosinality checkpoints keep a [512] average; e4e repeats it per row.
    let avg = match avg.shape.as_slice() {
        [n, d] if *n == n_latent && *d == style_dim => avg,
        [d] if *d == style_dim => HostTensor::new(vec![n_latent, style_dim], avg.data.repeat(n_latent)),
        other => {
            return Err(Error::config(format!("`latent_avg` has shape {other:?}, expected [{n_latent}, {style_dim}]")));
        }
    };
    t.tensors.insert("latent_avg".into(), avg);
    // The first style head halves the coarsest features (a sixteenth of the input) down to
    // 1 × 1, one stride-2 convolution per halving: its depth gives the input side.
    let halvings = count(&t, |k| format!("encoder.styles.0.convs.{}.weight", 2 * k));
    let inferred = 16 << halvings;
    let input_size = opts.input_size.unwrap_or(inferred);
    if input_size != inferred {
        return Err(Error::config(format!(
            "the encoder takes {inferred} px images (its first style head has {halvings} stride-2 convolutions), \
             not the {input_size} px asked for"
        )));
    }
    let cfg = EncoderConfig {
        variant: opts.encoder_variant,
        backbone: infer_irse(&t, "encoder.")?,
        n_latent,
        style_dim,
        input_size,
        ..EncoderConfig::e4e(1024)
    };
    let size = cfg.input_size;
    Ok((Architecture::E4e(cfg), t, size))
}

/// ArcFace IR-SE: stages, embedding and input side from the shapes.
fn identity(all: TensorFile, input_size: Option<usize>) -> Result<Inferred> {
    let p = find_prefix(&all, "output_layer.3.weight", &["facenet.", "state_dict.", "module.", ""])
        .ok_or_else(|| Error::config("no ArcFace in this checkpoint (looked for `output_layer.3.weight`)"))?;
    let t = all.select_prefix(&p);
    let backbone = infer_irse(&t, "")?;
    let [embedding, flat] = shape(&t, "output_layer.3.weight")?[..] else {
        return Err(Error::config("`output_layer.3.weight` is not a matrix"));
    };
    let side = ((flat / backbone.stages[3].0) as f64).sqrt().round() as usize;
    let cfg = ArcFaceConfig { backbone, input_size: side * 16, embedding };
    Ok((Architecture::Arcface(cfg), t, input_size.unwrap_or(side * 16)))
}

/// LPIPS v0.1 (AlexNet): no configuration to infer.
fn perceptual(all: TensorFile, input_size: Option<usize>) -> Result<Inferred> {
    let p = find_prefix(&all, "lin0.model.1.weight", &["state_dict.", "module.", ""]).ok_or_else(|| {
        Error::config("no LPIPS in this checkpoint (looked for `lin0.model.1.weight` beside `net.slice1.0.weight`)")
    })?;
    Ok((Architecture::Lpips, all.select_prefix(&p), input_size.unwrap_or(256)))
}

/// A torchvision ResNet detector: block kind, depth per stage, width and classes.
fn resnet(all: TensorFile, input_size: Option<usize>) -> Result<Inferred> {
    let p = find_prefix(&all, "layer1.0.conv1.weight", DETECTOR_PREFIXES).expect("checked by the guard");
    let t = all.select_prefix(&p);
    let blocks = |l: usize| (0..).take_while(|b| t.tensors.contains_key(&format!("layer{l}.{b}.conv1.weight"))).count();
    let cfg = ResnetConfig {
        block: if t.tensors.contains_key("layer1.0.conv3.weight") {
            ResnetBlock::Bottleneck
        } else {
            ResnetBlock::Basic
        },
        layers: [blocks(1), blocks(2), blocks(3), blocks(4)],
        width: shape(&t, "conv1.weight")?[0],
        num_classes: shape(&t, "fc.weight")?[0],
    };
    Ok((Architecture::Resnet(cfg), t, input_size.unwrap_or(256)))
}

/// An EfficientNet detector, DeepfakeBench's or Artifact-Eraser's timm layout: B4 or B7 by the stem.
fn efficientnet(all: TensorFile, input_size: Option<usize>) -> Result<Inferred> {
    let (p, layout, stem) = if let Some(p) = find_prefix(&all, "efficientnet._conv_stem.weight", DETECTOR_PREFIXES) {
        (p, EfficientNetLayout::DeepfakeBench, "efficientnet._conv_stem.weight")
    } else if let Some(p) = find_prefix(&all, "encoder.conv_stem.weight", DETECTOR_PREFIXES) {
        (p, EfficientNetLayout::ArtifactEraserTimm, "encoder.conv_stem.weight")
    } else {
        return Err(Error::config(
            "no detector in this checkpoint: looked for Xception (`block1.rep.0.conv1.weight`), torchvision ResNet \
                 (`layer1.0.conv1.weight`), DeepfakeBench EfficientNet (`efficientnet._conv_stem.weight`) and Artifact-Eraser timm EfficientNet (`encoder.conv_stem.weight`)",
        ));
    };
    let t = all.select_prefix(&p);
    let mut cfg = match shape(&t, stem)?[0] {
        48 => EfficientNetConfig::b4(layout),
        64 => EfficientNetConfig::b7(layout),
        other => {
            return Err(Error::config(format!(
                "EfficientNet stem of {other} channels: only B4 (48) and B7 (64) are known"
            )));
        }
    };
    cfg.num_classes =
        shape(&t, if layout == EfficientNetLayout::DeepfakeBench { "last_layer.weight" } else { "fc.weight" })?[0];
    Ok((Architecture::Efficientnet(cfg), t, input_size.unwrap_or(256)))
}

/// An Xception detector, Artifact-Eraser's or DeepfakeBench's layout: widths and middle blocks.
fn xception(all: TensorFile, input_size: Option<usize>) -> Result<Inferred> {
    let p = find_prefix(&all, "block1.rep.0.conv1.weight", DETECTOR_PREFIXES).expect("checked by the arm above");
    let t = all.select_prefix(&p);
    if t.tensors.contains_key("last_linear.1.weight") {
        return Err(Error::config(
            "this Xception has a dropout head (`last_linear.1.weight`); re-save it without dropout",
        ));
    }
    let layout = if t.tensors.contains_key("adjust_channel.0.weight") {
        XceptionLayout::DeepfakeBench
    } else {
        XceptionLayout::ArtifactEraser
    };
    let blocks = (1..).take_while(|n| t.tensors.keys().any(|k| k.starts_with(&format!("block{n}.")))).count();
    if blocks < 4 {
        return Err(Error::config(format!("this Xception has {blocks} blocks; at least 4 expected")));
    }
    let out = |key: &str| shape(&t, key).map(|s| s[0]);
    let widths = [
        out("conv1.weight")?,
        out("conv2.weight")?,
        out("block1.skip.weight")?,
        out("block2.skip.weight")?,
        out("block3.skip.weight")?,
        out(&format!("block{blocks}.skip.weight"))?,
        out("conv3.pointwise.weight")?,
        out("conv4.pointwise.weight")?,
    ];
    let cfg = XceptionConfig { widths, middle_blocks: blocks - 4, num_classes: out("last_linear.weight")?, layout };
    Ok((Architecture::Xception(cfg), t, input_size.unwrap_or(256)))
}

/// Whether a file looks like a PyTorch checkpoint (by extension).
pub fn is_pytorch(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("pt" | "pth" | "ckpt"))
}

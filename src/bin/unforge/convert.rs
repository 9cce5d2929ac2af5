//! `unforge convert`: one network of a PyTorch checkpoint into the zoo's safetensors.

use std::path::PathBuf;

use serde_json::json;
use unforge::error::{Error, Result};
use unforge::networks::e4e::EncoderVariant;
use unforge::weights::StoredPrecision;
use unforge::zoo::{Manifest, Role};

use crate::common::{io_err, write};

/// Converts a checkpoint (.pt/.pth zip format, or .safetensors) into one network's
/// safetensors with the original key names, and prints its zoo.json entry.
#[derive(clap::Args)]
pub struct ConvertArgs {
    checkpoint: PathBuf,
    /// generator, encoder, detector, identity (ArcFace) or perceptual (LPIPS).
    #[arg(long)]
    role: String,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Network name in the manifest (default: the output file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Input side for encoders and detectors (default 256).
    #[arg(long)]
    input_size: Option<usize>,
    /// minus_one_one or image_net (detectors).
    #[arg(long, default_value = "minus_one_one")]
    normalization: String,
    /// Store as f16 (half the size).
    #[arg(long)]
    f16: bool,
    /// Encoders: e4e (`Encoder4Editing`) or psp (`GradualStyleEncoder`); their keys are
    /// the same, so the checkpoint cannot tell.
    #[arg(long, default_value = "e4e")]
    encoder_variant: String,
    /// Add (or replace) the entry in this zoo.json.
    #[arg(long)]
    manifest: Option<PathBuf>,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let ConvertArgs { checkpoint, role, out, name, input_size, normalization, f16, encoder_variant, manifest } = args;
    let (name, input_size, f16) = (name.clone(), *input_size, *f16);
    let encoder_variant = match encoder_variant.as_str() {
        "e4e" => EncoderVariant::Encoder4Editing,
        "psp" => EncoderVariant::GradualStyleEncoder,
        other => return Err(Error::config(format!("--encoder-variant `{other}`: use e4e or psp"))),
    };
    let role: Role = serde_json::from_value(json!(role)).map_err(|_| {
        Error::config(format!("--role `{role}`: use generator, encoder, detector, identity or perceptual"))
    })?;
    let normalization = serde_json::from_value(json!(normalization))
        .map_err(|_| Error::config(format!("--normalization `{normalization}`: use minus_one_one or image_net")))?;
    let file = out
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| Error::config(format!("--out {}: not a file name", out.display())))?;
    let name = name.unwrap_or_else(|| out.file_stem().and_then(|s| s.to_str()).unwrap_or("network").to_string());
    let all = unforge::convert::read_checkpoint(checkpoint)?;
    let opts = unforge::convert::ConvertOptions {
        role,
        name: name.clone(),
        file: file.to_string(),
        input_size,
        normalization,
        encoder_variant,
    };
    let converted = unforge::convert::convert(all, &opts)?;
    let precision = if f16 { StoredPrecision::F16 } else { StoredPrecision::F32 };
    write(out, &converted.tensors.to_safetensors(precision))?;
    let entry = serde_json::to_string_pretty(&converted.entry).expect("json");
    if let Some(path) = manifest {
        let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
        let mut m: Manifest =
            serde_json::from_str(&text).map_err(|e| Error::manifest(format!("{}: {e}", path.display())))?;
        let e = converted.entry.clone();
        match m.networks.iter_mut().find(|n| n.name == e.name || (e.role != Role::Detector && n.role == e.role)) {
            Some(slot) => *slot = e,
            None => m.networks.push(e),
        }
        m.validate().map_err(|e| Error::manifest(format!("{} after adding `{name}`: {e}", path.display())))?;
        write(path, m.to_json().as_bytes())?;
    }
    println!("{entry}");
    eprintln!("wrote {} ({} tensors)", out.display(), converted.tensors.tensors.len());
    Ok(())
}

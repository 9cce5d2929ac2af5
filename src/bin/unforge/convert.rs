//! `unforge convert`: one network of a PyTorch checkpoint into the zoo's safetensors.

use std::path::{Path, PathBuf};

use serde_json::json;
use unforge::convert::{ConvertOptions, Converted};
use unforge::error::{Error, Result};
use unforge::networks::Normalization;
use unforge::networks::e4e::EncoderVariant;
use unforge::weights::StoredPrecision;
use unforge::zoo::{Manifest, Role};

use crate::common::{io_err, write_atomic};

/// Converts a checkpoint (.pt/.pth zip format, or .safetensors) into one network's
/// safetensors with the original key names, and prints its zoo.json entry. With `--manifest`,
/// the entry joins that zoo when the result is consistent; otherwise nothing is written.
#[derive(clap::Args)]
pub struct ConvertArgs {
    checkpoint: PathBuf,
    /// generator, encoder, detector, identity (ArcFace) or perceptual (LPIPS).
    #[arg(long)]
    role: String,
    /// Output safetensors file (beside the manifest, with `--manifest`).
    #[arg(long)]
    out: PathBuf,
    /// Network name in the manifest (default: the output file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Input side of a detector (default 256); an encoder's is read from its layers.
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
    /// Add (or replace) the entry in this zoo.json. A new generator brings its W+ rows (and
    /// the levels become their thirds when the old ones no longer fit); the zoo is checked as
    /// one set before anything is written.
    #[arg(long)]
    manifest: Option<PathBuf>,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let ConvertArgs { checkpoint, role, out, name, input_size, normalization, f16, encoder_variant, manifest } = args;
    let file = out
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| Error::config(format!("--out {}: not a file name", out.display())))?;
    let name = name.clone().unwrap_or_else(|| out.file_stem().and_then(|s| s.to_str()).unwrap_or("network").into());
    let opts = ConvertOptions {
        role: parse_role(role)?,
        name: name.clone(),
        file: file.to_string(),
        input_size: *input_size,
        normalization: parse_normalization(normalization, "--normalization")?,
        encoder_variant: parse_encoder_variant(encoder_variant)?,
    };
    let converted = convert_file(checkpoint, &opts)?;
    let precision = if *f16 { StoredPrecision::F16 } else { StoredPrecision::F32 };
    // Everything is checked before anything is written: a clash leaves the zoo as it was.
    let joined = match manifest {
        Some(path) => Some((path, joined_manifest(path, out, &converted)?)),
        None => None,
    };
    let bytes = stored(&converted, precision, checkpoint)?;
    write_atomic(out, &bytes)?;
    if let Some((path, m)) = joined {
        write_atomic(path, m.to_json().as_bytes())?;
    }
    println!("{}", serde_json::to_string_pretty(&converted.entry).expect("json"));
    eprintln!(
        "wrote {} ({} tensors, {}): {}",
        out.display(),
        converted.tensors.tensors.len(),
        megabytes(bytes.len()),
        converted.entry.architecture.summary()
    );
    Ok(())
}

/// The zoo at `path` with the converted network in it, checked as one set, and its other
/// weight files present: a copied zoo.json without them fails here, not at run time.
fn joined_manifest(path: &Path, out: &Path, converted: &Converted) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let here = Manifest::from_json(&text).map_err(|e| Error::manifest(format!("{}: {e}", path.display())))?;
    let name = &converted.entry.name;
    let joined = here
        .with_network(converted.entry.clone())
        .map_err(|e| Error::manifest(format!("{} with `{name}`: {e}", path.display())))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let out_dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if std::fs::canonicalize(dir).ok() != std::fs::canonicalize(out_dir).ok() {
        return Err(Error::config(format!(
            "--out {}: a zoo's weight files sit beside its manifest, in {}",
            out.display(),
            dir.display()
        )));
    }
    for n in joined.networks.iter().filter(|n| &n.name != name) {
        if let Some(file) = n.stored_files().into_iter().find(|f| !dir.join(f).is_file()) {
            return Err(Error::manifest(format!(
                "{}: network `{}`'s weight file {} is missing (copy it beside the manifest)",
                path.display(),
                n.name,
                dir.join(file).display()
            )));
        }
    }
    Ok(joined)
}

/// Reads a checkpoint and converts one network of it.
pub fn convert_file(checkpoint: &Path, opts: &ConvertOptions) -> Result<Converted> {
    let all = unforge::convert::read_checkpoint(checkpoint)?;
    unforge::convert::convert(all, opts).map_err(|e| match e {
        Error::Config(reason) => {
            Error::config(format!("{} as the {}: {reason}", checkpoint.display(), opts.role.as_str()))
        }
        Error::WeightMismatch { problems, .. } => Error::WeightMismatch {
            origin: format!("{} as the {}", checkpoint.display(), opts.role.as_str()),
            problems,
        },
        other => other,
    })
}

/// The safetensors bytes of a converted network at `precision`, refused when a value does not fit.
pub fn stored(converted: &Converted, precision: StoredPrecision, checkpoint: &Path) -> Result<Vec<u8>> {
    converted.tensors.check_storable(precision, &checkpoint.display().to_string())?;
    Ok(converted.tensors.to_safetensors(precision))
}

pub fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn parse_role(role: &str) -> Result<Role> {
    serde_json::from_value(json!(role)).map_err(|_| {
        Error::config(format!("--role `{role}`: use generator, encoder, detector, identity or perceptual"))
    })
}

pub fn parse_normalization(normalization: &str, flag: &str) -> Result<Normalization> {
    serde_json::from_value(json!(normalization))
        .map_err(|_| Error::config(format!("{flag} `{normalization}`: use minus_one_one or image_net")))
}

pub fn parse_encoder_variant(variant: &str) -> Result<EncoderVariant> {
    match variant {
        "e4e" => Ok(EncoderVariant::Encoder4Editing),
        "psp" => Ok(EncoderVariant::GradualStyleEncoder),
        other => Err(Error::config(format!("--encoder-variant `{other}`: use e4e or psp"))),
    }
}

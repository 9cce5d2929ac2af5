//! `unforge align`: the FFHQ crop of every face in a batch of pictures, found by BlazeFace;
//! the replacement for the dlib step of the original pipelines.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use unforge::error::{Error, Result};
use unforge::faces::{Face, align};
use unforge::readback::block_on;

use crate::common::{DeviceArgs, mkdir, read_image, write, write_atomic};

/// Finds the faces of each PNG and writes each face's aligned crop (`NAME-K.png`, best face
/// first) and `faces.json`: every face's box, keypoints, score and FFHQ quad in the source
/// picture's pixels (continuous coordinates: pixel i spans [i, i+1)).
#[derive(clap::Args)]
pub struct AlignArgs {
    /// PNG pictures, or folders of them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// The aligned crops' side in pixels (e4e's `align_face`: 256; FFHQ: 1024).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Only the largest face of each picture.
    #[arg(long)]
    largest: bool,
    #[command(flatten)]
    detect: crate::common::DetectArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Serialize)]
struct PictureFaces {
    image: String,
    width: usize,
    height: usize,
    faces: Vec<AlignedFace>,
}

#[derive(Serialize)]
struct AlignedFace {
    file: String,
    #[serde(flatten)]
    face: Face,
}

fn inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(crate::common::png_files(p)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn run(args: &AlignArgs) -> Result<()> {
    if args.size == 0 || args.size > 4096 {
        return Err(Error::config(format!("--size {}: use 1 to 4096", args.size)));
    }
    let images = inputs(&args.images)?;
    let device = args.device.open()?;
    let (detector, settings) = args.detect.open(&device)?;
    mkdir(&args.out)?;
    let start = Instant::now();
    let mut records = Vec::new();
    let (mut found, mut empty, mut failed) = (0usize, 0usize, 0usize);
    for (i, path) in images.iter().enumerate() {
        let origin = path.display().to_string();
        // One bad picture is reported and skipped: a batch is not lost to it.
        let outcome = read_image(path).and_then(|img| {
            let mut faces = block_on(detector.detect(&img, &settings))?;
            if args.largest {
                faces = unforge::faces::largest(&faces).map(|i| vec![faces.swap_remove(i)]).unwrap_or_default();
            }
            Ok((img, faces))
        });
        let (img, faces) = match outcome {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{origin}: {e}");
                failed += 1;
                continue;
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        let mut aligned = Vec::new();
        for (k, face) in faces.into_iter().enumerate() {
            let file = format!("{stem}-{k}.png");
            write(&args.out.join(&file), &align(&img, &face.quad, args.size)?.encode_png())?;
            aligned.push(AlignedFace { file, face });
        }
        if aligned.is_empty() {
            empty += 1
        } else {
            found += 1
        }
        let elapsed = start.elapsed().as_secs_f32();
        let eta = elapsed / (i + 1) as f32 * (images.len() - i - 1) as f32;
        eprintln!("[{}/{}] {origin}: {} face(s)  {elapsed:.1}s, ETA {eta:.0}s", i + 1, images.len(), aligned.len());
        records.push(PictureFaces { image: origin, width: img.width, height: img.height, faces: aligned });
    }
    let json = serde_json::to_string_pretty(&records).map_err(|e| Error::config(e.to_string()))?;
    write_atomic(&args.out.join("faces.json"), json.as_bytes())?;
    println!(
        "{} pictures: {found} with faces, {empty} without, {failed} unreadable; written to {}",
        images.len(),
        args.out.display()
    );
    if failed > 0 && failed == images.len() {
        return Err(Error::config("no picture could be read"));
    }
    Ok(())
}

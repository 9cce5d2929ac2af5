//! `unforge invert`: face images into W+, the codes kept for later searches.

use std::path::PathBuf;
use std::time::Instant;

use unforge::error::{Error, Result};
use unforge::explanation::{Face, latent_codes};
use unforge::image::{RgbaImage, Square};
use unforge::metrics::{psnr, to_unit_range};
use unforge::readback::{block_on, read_planar};

use crate::common::{DeviceArgs, load_zoo, mkdir, read_image, write};

/// Inverts each image (its centred square, as `unforge run` without `--crop`) with the zoo's
/// encoder and writes `STEM.latents.safetensors` (the W+ codes `unforge run --latent` starts
/// from) and `STEM.reconstruction.png`, printing each reconstruction's PSNR and time.
#[derive(clap::Args)]
pub struct InvertArgs {
    /// PNG face images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value = "models")]
    zoo: PathBuf,
    #[arg(long, default_value = "inverted")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: &InvertArgs) -> Result<()> {
    let device = args.device.open()?;
    let loading = Instant::now();
    let zoo = load_zoo(&args.zoo, &device)?;
    eprintln!("loaded zoo `{}` in {:.1}s", zoo.manifest.name, loading.elapsed().as_secs_f32());
    mkdir(&args.out)?;
    let size = zoo.generator.size;
    for (i, path) in args.images.iter().enumerate() {
        let start = Instant::now();
        let image = read_image(path)?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| Error::config(format!("{}: not a file name to name the outputs after", path.display())))?;
        let face = Face::with_mask(&image, &Square::centred(image.width, image.height), None, size)?;
        let inversion = zoo.inverter().invert(&face.crop, &device);
        let codes = block_on(latent_codes(&zoo, &inversion, None, None))?;
        let rec = block_on(read_planar(inversion.reconstruction.clone()))?.remove(0);
        let db = psnr(&to_unit_range(&face.image.to_planar()), &to_unit_range(&rec), 1.0);
        write(&args.out.join(format!("{stem}.latents.safetensors")), &codes.to_safetensors())?;
        write(
            &args.out.join(format!("{stem}.reconstruction.png")),
            &RgbaImage::from_planar(&rec, size, size).encode_png(),
        )?;
        println!(
            "[{}/{}] {}: PSNR {db:.2} dB, {:.1}s",
            i + 1,
            args.images.len(),
            path.display(),
            start.elapsed().as_secs_f32()
        );
    }
    Ok(())
}

//! `unforge samples`: the demo's sample images.

use std::path::PathBuf;

use unforge::error::{Error, Result};
use unforge::image::RgbaImage;
use unforge::synth::{ForgeryStrength, Sample, Split};

use crate::common::{mkdir, read_image, write};

/// Writes the demo's sample images: a face crop of a photograph and seeded synthetic faces.
#[derive(clap::Args)]
pub struct SamplesArgs {
    /// The photograph (the public-domain astronaut portrait).
    photo: PathBuf,
    /// Face box in the photograph: x,y,side.
    #[arg(long, default_value = "140,15,170", value_delimiter = ',')]
    face: Vec<usize>,
    #[arg(long, default_value = "www/samples")]
    out: PathBuf,
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// How many seeded blob images (synthetic-N.png) to write besides.
    #[arg(long, default_value_t = 0)]
    synthetic: usize,
    /// Forgery strengths of the synthetic fakes: `visible` (the default zoo's world) or
    /// `subtle` (the world's first strengths).
    #[arg(long, default_value = "visible", value_parser = ForgeryStrength::preset)]
    forgeries: ForgeryStrength,
}

pub fn run(args: &SamplesArgs) -> Result<()> {
    let SamplesArgs { photo, face, out, size, synthetic, forgeries } = args;
    let (size, synthetic) = (*size, *synthetic);
    let [x, y, side] = face.as_slice() else {
        return Err(Error::config(format!("--face takes x,y,side, got {face:?}")));
    };
    let img = read_image(photo)?;
    mkdir(out)?;
    write(&out.join("photo-face.png"), &img.crop(*x, *y, *side, *side)?.resize(size, size).encode_png())?;
    let mut rng = unforge::rng::SeededRng::new(11);
    for i in 1..=synthetic {
        write(
            &out.join(format!("synthetic-{i}.png")),
            &unforge::zoo_init::seeded_blob_image(&mut rng, size).encode_png(),
        )?;
    }
    // Fakes of the synthetic world with the real image they were made from and the mask of
    // what changed: a face swap, asymmetric eyes and upsampling traces (test split). Test
    // face 1, the first face swap, is one the default zoo's Xception and ResNet searches do not
    // turn in 50 steps; face 25, the third, is turned by all three (the model card).
    for (i, index) in [25u64, 3, 7].into_iter().enumerate() {
        let s = Sample::generate_with(Split::Test, index, size, forgeries);
        write(&out.join(format!("synth-fake-{}.png", i + 1)), &s.image.encode_png())?;
        write(&out.join(format!("synth-real-{}.png", i + 1)), &s.pristine.encode_png())?;
        write(&out.join(format!("synth-mask-{}.png", i + 1)), &RgbaImage::encode_gray_png(size, size, &s.mask))?;
    }
    println!("wrote {} samples to {}", synthetic + 10, out.display());
    Ok(())
}

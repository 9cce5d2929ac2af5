//! `unforge synth`: images of the synthetic face world, with their truth.

use std::path::PathBuf;

use serde_json::json;
use unforge::error::{Error, Result};
use unforge::image::RgbaImage;
use unforge::synth::{ForgeryStrength, Label, Sample, Split, contact_sheet};

use crate::common::{mkdir, write};

/// Writes images of the synthetic face world: PNGs, a mask per image of exactly the pixels
/// its forgery altered (masks/), labels.json ({"name.png": "real" | "fake"}, as `eval`
/// reads it), samples.json (forgery kind, seed, altered pixels) and world.json (the split, the
/// size and the forgery strengths the images were drawn at).
#[derive(clap::Args)]
pub struct SynthArgs {
    /// train, validation or test (disjoint seed ranges).
    #[arg(long, default_value = "test")]
    split: String,
    #[arg(long, default_value_t = 64)]
    count: u64,
    /// Index of the first image in the split.
    #[arg(long, default_value_t = 0)]
    start: u64,
    #[arg(long, default_value_t = 128)]
    size: usize,
    #[arg(long, default_value = "synth")]
    out: PathBuf,
    /// Also write contact-sheet.png, the first 64 images in an 8×8 grid.
    #[arg(long)]
    contact_sheet: bool,
    /// Forgery strengths: `visible` (the default zoo's world) or `subtle` (the world's first
    /// strengths, see the model card).
    #[arg(long, default_value = "visible", value_parser = ForgeryStrength::preset)]
    forgeries: ForgeryStrength,
}

pub fn run(args: &SynthArgs) -> Result<()> {
    let SynthArgs { split, count, start, size, out, contact_sheet: sheet, forgeries } = args;
    let (count, start, size, sheet) = (*count, *start, *size, *sheet);
    let split: Split = split.parse()?;
    if !(32..=1024).contains(&size) || size % 8 != 0 {
        return Err(Error::config(format!("--size {size}: use a multiple of 8 between 32 and 1024")));
    }
    if count == 0 {
        return Err(Error::config("--count must be at least 1"));
    }
    mkdir(&out.join("masks"))?;
    let (mut labels, mut details, mut sheet_images) = (serde_json::Map::new(), Vec::new(), Vec::new());
    for index in start..start + count {
        let s = Sample::generate_with(split, index, size, forgeries);
        let name = s.file_name();
        write(&out.join(&name), &s.image.encode_png())?;
        write(&out.join("masks").join(&name), &RgbaImage::encode_gray_png(size, size, &s.mask))?;
        let (label, kind) = match s.label {
            Label::Real => ("real", None),
            Label::Fake(kind) => ("fake", Some(kind)),
        };
        labels.insert(name.clone(), json!(label));
        details.push(json!({ "image": name, "mask": format!("masks/{name}"), "label": label, "forgery": kind, "seed": s.seed, "altered_pixels": s.altered_pixels() }));
        if sheet && sheet_images.len() < 64 {
            sheet_images.push(s.image);
        }
    }
    write(&out.join("labels.json"), serde_json::to_string_pretty(&labels).expect("json").as_bytes())?;
    write(&out.join("samples.json"), serde_json::to_string_pretty(&details).expect("json").as_bytes())?;
    // Serialised as a struct, not through `json!`, so that the f32 strengths read as written.
    #[derive(serde::Serialize)]
    struct World<'a> {
        split: &'a str,
        size: usize,
        forgeries: Option<&'static str>,
        strengths: ForgeryStrength,
    }
    let world = World { split: split.name(), size, forgeries: forgeries.name(), strengths: *forgeries };
    write(&out.join("world.json"), serde_json::to_string_pretty(&world).expect("json").as_bytes())?;
    if sheet {
        write(&out.join("contact-sheet.png"), &contact_sheet(&sheet_images, 8)?.encode_png())?;
    }
    println!("wrote {count} {} images ({size} px) to {}", split.name(), out.display());
    Ok(())
}

//! `unforge run`: one explanation of one image, written as pictures and a report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use unforge::error::{Error, Result};
use unforge::explanation::{ExplainRequest, Explanation, Progress, TruthMask, explain, observer};
use unforge::inversion::LatentCodes;
use unforge::options::ExplainOptions;
use unforge::readback::block_on;
use unforge::report::{Provenance, Report};

use crate::common::{DetectArgs, DeviceArgs, io_err, load_zoo, mkdir, read_image, write};

/// Explains one image: inversion, latent search, counterfactual, residual maps, CAMs and a
/// JSON report with every detector's scores and the quality metrics.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A PNG face image.
    image: PathBuf,
    #[arg(long, default_value = "models")]
    zoo: PathBuf,
    #[command(flatten)]
    options: ExplainOptions,
    /// The image's ground-truth mask of forged pixels (a PNG of the image's size, white where
    /// altered; `unforge synth` writes them to `masks/`): the explanation is scored against
    /// it as `unforge eval` scores it (AUROC of the residual and of the drop of the victim's
    /// Grad-CAM for "fake"), printed and kept in the report.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Start from a saved inversion instead of the encoder's: the `latents.safetensors` an
    /// earlier run on this zoo wrote (its `inversion`). Pivotal tuning, when asked for, tunes
    /// the generator around it.
    #[arg(long)]
    latent: Option<PathBuf>,
    /// Find the largest face (BlazeFace) and explain its FFHQ crop instead of the picture
    /// (the truth mask is cut the same way; not with --crop).
    #[arg(long)]
    align: bool,
    #[command(flatten)]
    detect: DetectArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// The folder for the pictures, report.json and latents.safetensors (the W+ codes of the
    /// inversion and the counterfactual).
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

pub fn run(args: &RunArgs) -> Result<()> {
    // Every flag is checked before any work starts.
    args.options.validate()?;
    let device = args.device.open()?;
    let loading = Instant::now();
    let zoo = load_zoo(&args.zoo, &device)?;
    eprintln!("loaded zoo `{}` in {:.1}s", zoo.manifest.name, loading.elapsed().as_secs_f32());
    if args.options.cam_layer.as_deref() == Some("list") {
        let victim = zoo.detector(args.options.detector.as_deref().unwrap_or(&zoo.detectors[0].0))?;
        println!("{}", victim.layer_names().join("\n"));
        return Ok(());
    }
    let mut image = read_image(&args.image)?;
    let mut truth = match &args.truth {
        Some(path) => Some(TruthMask { image: read_image(path)?, origin: path.display().to_string() }),
        None => None,
    };
    if args.align {
        if args.options.crop.is_some() {
            return Err(Error::config("--align finds the crop itself: leave out --crop"));
        }
        let (detector, settings) = args.detect.open(&device)?;
        let mut faces = block_on(detector.detect(&image, &settings))?;
        let Some(largest) = unforge::faces::largest(&faces) else {
            return Err(Error::Image {
                origin: args.image.display().to_string(),
                reason: "no face found (BlazeFace, score ≥ --min-face-score); crop it by hand with --crop".into(),
            });
        };
        let face = faces.swap_remove(largest);
        // Aligned at the generator's size: the alignment samples anti-aliased, and the spine
        // then takes the picture as it is.
        let size = zoo.generator.size;
        let [x0, y0, x1, y1] = face.bbox;
        eprintln!(
            "aligned the face at ({x0:.0}, {y0:.0})–({x1:.0}, {y1:.0}), score {:.2}, side {:.0} px",
            face.score,
            face.quad.side()
        );
        if let Some(t) = truth.as_mut() {
            if (t.image.width, t.image.height) != (image.width, image.height) {
                return Err(Error::config(format!("{}: the mask is not the picture's size", t.origin)));
            }
            t.image = unforge::faces::align(&t.image, &face.quad, size)?;
        }
        image = unforge::faces::align(&image, &face.quad, size)?;
    }
    let start = match &args.latent {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
            Some(LatentCodes::from_safetensors(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    // The crop, the truth and the codes are checked first thing, before the inversion.
    let request = ExplainRequest { truth, start, ..args.options.resolve(&zoo)? };
    let start = Instant::now();
    let mut progress = observer(|p| match p {
        Progress::Tuning(t) if t.step % 20 == 0 || t.step + 1 == t.steps => {
            let at = start.elapsed().as_secs_f32();
            eprintln!("pivotal tuning {:>4}/{}  loss {:.5}  {at:.2}s", t.step + 1, t.steps, t.loss);
        }
        Progress::Stage(stage) => eprintln!("{stage:?} from {:.2}s", start.elapsed().as_secs_f32()),
        Progress::Search(r, _) => {
            eprintln!("step {:>4}  P(fake) {:.4}  {:.2}s", r.step, r.p_fake[0], start.elapsed().as_secs_f32())
        }
        _ => {}
    });
    let result = block_on(explain(&zoo, &image, &request, &mut progress))?;
    let from = Provenance {
        zoo: &zoo,
        backend: &args.device.backend,
        options: &args.options,
        request: &request,
        image: Some(args.image.display().to_string()),
        mask: args.truth.as_ref().map(|p| p.display().to_string()),
    };
    let report = Report::new(from, &result);

    write_files(&args.out, &result, &report)?;
    print_summary(&result, &args.out);
    Ok(())
}

/// The pictures of the explanation and its report.
fn write_files(out: &Path, result: &Explanation, report: &Report) -> Result<()> {
    mkdir(out)?;
    let mut pictures = vec![
        ("input.png", result.input.clone()),
        ("reconstruction.png", result.reconstruction.clone()),
        ("counterfactual.png", result.counterfactual.clone()),
        ("residual_signed.png", result.residual.signed_rgba(report.residual_gain)),
        ("residual_magnitude.png", result.residual.magnitude_rgba(report.residual_gain)),
        ("inversion_error.png", result.inversion_error.magnitude_rgba(report.inversion_error_gain)),
    ];
    let maps = result.cams.as_ref().ok_or_else(|| Error::config("the request made no CAMs"))?;
    let shown = [
        (&result.input, "cam_input.png"),
        (&result.reconstruction, "cam_reconstruction.png"),
        (&result.counterfactual, "cam_counterfactual.png"),
    ];
    for ((img, name), map) in shown.into_iter().zip(maps) {
        pictures.push((name, map.overlay(img, 0.5)));
    }
    for (name, img) in &pictures {
        write(&out.join(name), &img.encode_png())?;
    }
    write(&out.join("latents.safetensors"), &result.codes.to_safetensors())?;
    write(&out.join("report.json"), report.to_json().as_bytes())
}

/// Every detector's scores, and the localisation when the truth was given.
fn print_summary(result: &Explanation, out: &Path) {
    let reached = if result.success { "success" } else { "not reached" };
    println!(
        "{}: P(fake) {:.4} → {:.4} in {} steps ({reached}), written to {}",
        result.detector,
        result.p_fake_reconstruction,
        result.p_fake_counterfactual,
        result.steps,
        out.display()
    );
    for s in &result.scores {
        println!(
            "  {:<16} input {:.4}  reconstruction {:.4}  counterfactual {:.4}",
            s.detector, s.input, s.reconstruction, s.counterfactual
        );
    }
    if let Some(found) = &result.localisation {
        let shown = |a: Option<f64>| {
            a.map_or("n/a (the mask is empty or covers the whole crop)".to_string(), |a| format!("{a:.3}"))
        };
        println!(
            "  against the ground-truth mask (AUROC, 0.5 is chance): residual {}, Grad-CAM drop {}",
            shown(found.change_auroc),
            shown(found.cam_auroc)
        );
    }
}

//! `unforge`: the command-line front of the core, for batch work.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::json;
use burn::tensor::Device;
use unforge::error::{Error, Result};
use unforge::eval::{GroundTruth, Localisation};
use unforge::explain::{CamMethod, CamTarget};
use unforge::image::RgbaImage;
use unforge::inversion::PivotalTuning;
use unforge::pipeline::{explain_live, Live, Progress};
use unforge::search::{Level, Method, Preset, Regularisers, RowMask, SearchConfig};
use unforge::weights::{StoredPrecision, TensorFile};
use unforge::zoo::{read_dir, Role, Zoo};
use unforge::zoo_init::TinyZooSpec;

#[path = "unforge/eval.rs"]
mod eval;
#[path = "unforge/train.rs"]
mod train;

use eval::EvalArgs;

#[derive(Parser)]
#[command(name = "unforge", version, about = "Counterfactual explanations for face-forgery detectors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the seeded zoo of small untrained networks (zoo.json + safetensors).
    InitZoo {
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
    },
    /// Writes the demo's sample images: a face crop of a photograph and seeded synthetic faces.
    Samples {
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
    },
    /// Writes images of the synthetic face world: PNGs, a mask per image of exactly the pixels
    /// its forgery altered (masks/), labels.json ({"name.png": "real" | "fake"}, as `eval`
    /// reads it) and samples.json (forgery kind, seed, altered pixels).
    Synth {
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
    },
    /// Trains a zoo on the synthetic world on the CPU: the generator and encoder as an
    /// autoencoder through W+ (real and fake images), then each detector (Xception,
    /// EfficientNet, ResNet) on real vs fake, raw and reconstructed, then an identity network
    /// (ArcFace IR-SE) on shots of the same people. Writes zoo.json, the weights (f16),
    /// train-report.json (losses, test-split scores) and resumable checkpoints.
    Train(train::TrainArgs),
    /// Converts a checkpoint (.pt/.pth zip format, or .safetensors) into one network's
    /// safetensors with the original key names, and prints its zoo.json entry.
    Convert {
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
    },
    /// Times one search step: the rosinality generator (keyed weights) and Xception, forward
    /// and backward to W+, batch 1, on `--backend`; and one pivotal tuning step against it.
    /// Prints the median over `--steps`.
    Bench {
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        channel_multiplier: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
        /// flex (CPU) or wgpu (GPU; needs a build with `--features wgpu`).
        #[arg(long, default_value = "flex")]
        backend: String,
    },
    /// Explains one image: inversion, latent search, counterfactual, residual maps, CAMs and
    /// a JSON report with every detector's scores and the quality metrics.
    Run {
        /// A PNG face image.
        image: PathBuf,
        #[arg(long, default_value = "models")]
        zoo: PathBuf,
        /// Victim detector (default: the zoo's first).
        #[arg(long)]
        detector: Option<String>,
        #[command(flatten)]
        search: SearchArgs,
        /// CAM of the victim on the input, reconstruction and counterfactual: grad_cam,
        /// grad_cam_plus_plus or layer_cam.
        #[arg(long, default_value = "grad_cam")]
        cam: String,
        /// Layer of the CAM, by its PyTorch name (e.g. block3, conv4, blocks.5); default: the
        /// last convolutional block. `--cam-layer list` prints the victim's layers.
        #[arg(long)]
        cam_layer: Option<String>,
        /// Class of the CAM (1 = fake, 0 = real).
        #[arg(long, default_value_t = 1)]
        cam_class: usize,
        /// The image's ground-truth mask of forged pixels (a PNG of the image's size, white where
        /// altered; `unforge synth` writes them to `masks/`): the explanation is scored against
        /// it as `unforge eval` scores it (AUROC of the residual and of the drop of the victim's
        /// Grad-CAM for "fake"), printed and kept in the report.
        #[arg(long)]
        truth: Option<PathBuf>,
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Runs the paper's experiments over a folder of face images and writes Markdown, CSV and
    /// JSON tables (Tab. 1 quality, Tab. 2/3 transfer, Tab. 4 levels, Tab. 5 α, ASR vs steps).
    /// A re-run with the same --out skips the images already done.
    Eval {
        /// A folder of PNG face crops. An optional labels.json ({"name.png": "fake" | "real"})
        /// restricts the attacks to the fakes.
        data: PathBuf,
        #[arg(long, default_value = "models")]
        zoo: PathBuf,
        /// Victim detectors, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        victims: Vec<String>,
        /// Attacks, comma-separated: latent, fgsm, ifgsm, pgd, mifgsm.
        #[arg(long, value_delimiter = ',', default_value = "latent,fgsm,pgd,mifgsm")]
        attacks: Vec<String>,
        #[command(flatten)]
        search: SearchArgs,
        /// Pixel attacks' budget ε, in /255 units.
        #[arg(long, default_value_t = 8.0)]
        eps: f32,
        /// Pixel attacks' step, in /255 units.
        #[arg(long, default_value_t = 2.0)]
        pixel_alpha: f32,
        #[arg(long, default_value_t = 10)]
        pixel_steps: usize,
        /// Tab. 4: also run the S, M and D levels alone.
        #[arg(long)]
        level_ablation: bool,
        /// Tab. 5: also run these step sizes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        alphas: Vec<f32>,
        /// ASR against steps for the paper and fast presets.
        #[arg(long)]
        curve: bool,
        /// ID retention threshold on the ArcFace cosine.
        #[arg(long, default_value_t = 0.5)]
        id_threshold: f64,
        /// Use only the first N images (sorted by name).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value = "eval-out")]
        out: PathBuf,
    },
}

/// Latent-search settings shared by `run` and `eval`. A preset gives the defaults; explicit
/// flags override it.
#[derive(clap::Args)]
struct SearchArgs {
    /// paper (attack.sh: α 8e-4, 1000 steps), readme (α 2e-4, 50 steps) or fast.
    #[arg(long, default_value = "readme")]
    preset: String,
    /// Levels of W+ to move: S, M, D or full (comma-separated), or --rows.
    #[arg(long, default_value = "full")]
    levels: String,
    /// Explicit rows of W+ to move (comma-separated), instead of levels.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<usize>,
    #[arg(long)]
    alpha: Option<f32>,
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    kappa: Option<f32>,
    /// ifgsm (Eq. 3), mifgsm, nifgsm or pgd.
    #[arg(long)]
    method: Option<String>,
    /// Momentum of MI/NI-FGSM (and of pixel MI-FGSM).
    #[arg(long, default_value_t = 1.0)]
    mu: f32,
    /// L∞ bound of PGD around the inversion.
    #[arg(long, default_value_t = 0.05)]
    beta: f32,
    /// Rprop's largest step, in units of α (default 8).
    #[arg(long)]
    max_scale: Option<f32>,
    /// mse (the paper's) or ce.
    #[arg(long, default_value = "mse")]
    loss: String,
    /// Halvings of the last step after success (the quality guard; the fast preset uses 3).
    #[arg(long)]
    refine: Option<usize>,
    /// λ of the pixel-MSE regulariser against the reconstruction.
    #[arg(long, default_value_t = 0.0)]
    lambda_pixel: f32,
    /// λ of the LPIPS regulariser (needs a perceptual network in the zoo).
    #[arg(long, default_value_t = 0.0)]
    lambda_lpips: f32,
    /// λ of the ID regulariser (needs an identity network in the zoo). Default 0, or 1 with
    /// the fast preset when the zoo has an identity network.
    #[arg(long)]
    lambda_id: Option<f32>,
    /// Seed of every random choice (pixel PGD's random start).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Pivotal tuning: Adam steps fine-tuning the generator so that it renders this image from
    /// its inversion, before the search (0: off). Default: what the zoo's manifest recommends
    /// (`pivotal_tuning`), else 0.
    #[arg(long)]
    tune_steps: Option<usize>,
    /// Adam's learning rate for pivotal tuning. Default: the zoo's, else 0.002.
    #[arg(long)]
    tune_lr: Option<f32>,
    /// flex (CPU) or wgpu (GPU; needs a build with `--features wgpu`).
    #[arg(long, default_value = "flex")]
    backend: String,
}

impl SearchArgs {
    /// The search settings, checked.
    fn config(&self) -> Result<SearchConfig> {
        let defaults = self.preset.parse::<Preset>()?.config();
        let max_scale = self.max_scale.unwrap_or(unforge::search::RPROP_MAX_SCALE);
        let method = match (&self.method, defaults.method) {
            (Some(name), _) => Method::from_name_with(name, self.mu, self.beta, max_scale)?,
            (None, Method::Rprop { .. }) if self.max_scale.is_some() => Method::Rprop { max_scale },
            (None, preset) => preset,
        };
        let config = SearchConfig {
            method,
            loss: self.loss.parse()?,
            alpha: self.alpha.unwrap_or(defaults.alpha),
            max_steps: self.steps.unwrap_or(defaults.max_steps),
            kappa: self.kappa.unwrap_or(defaults.kappa),
            refine: self.refine.unwrap_or(defaults.refine),
            regularisers: Regularisers { pixel: self.lambda_pixel, lpips: self.lambda_lpips, id: self.lambda_id.unwrap_or(0.0) },
            seed: self.seed,
            pivotal_tuning: self.tuning(None),
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }

    /// The pivotal tuning flags over `recommended` (a zoo's), over none.
    fn tuning(&self, recommended: Option<PivotalTuning>) -> PivotalTuning {
        let base = recommended.unwrap_or_else(PivotalTuning::off);
        PivotalTuning { steps: self.tune_steps.unwrap_or(base.steps), learning_rate: self.tune_lr.unwrap_or(base.learning_rate) }
    }

    /// `config` for `zoo`: the preset's ID regulariser where the zoo can compute it, unless
    /// `--lambda-id` says otherwise, and the zoo's pivotal tuning unless the flags say otherwise.
    fn for_zoo(&self, config: SearchConfig, zoo: &Zoo) -> SearchConfig {
        let preset_id = self.preset.parse::<Preset>().map_or(0.0, |p| p.config_with_identity(zoo.identity.is_some()).regularisers.id);
        let id = self.lambda_id.unwrap_or(preset_id);
        let pivotal_tuning = self.tuning(zoo.manifest.pivotal_tuning);
        SearchConfig { regularisers: Regularisers { id, ..config.regularisers }, pivotal_tuning, ..config }
    }

    fn levels(&self) -> Result<Vec<Level>> {
        self.levels.split(',').map(|l| l.trim().parse::<Level>()).collect()
    }

    fn mask(&self, zoo: &Zoo) -> Result<RowMask> {
        let n = zoo.manifest.n_latent;
        if self.rows.is_empty() { RowMask::from_levels(&self.levels()?, &zoo.manifest.levels, n) } else { RowMask::from_rows(&self.rows, n) }
    }

    fn device(&self) -> Result<Device> {
        open_backend(&self.backend)
    }
}

/// The compute device a `--backend` names.
fn open_backend(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" | "gpu" => Device::wgpu_options().init().map_err(|e| Error::Backend(format!("no wgpu device: {e:?}"))),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" | "gpu" => Err(Error::config("this unforge was built without the wgpu backend; build it with `cargo build --release --features wgpu`")),
        other => Err(Error::config(format!("--backend `{other}`: use flex or wgpu"))),
    }
}

fn read_image(path: &Path) -> Result<RgbaImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    RgbaImage::decode_png(&bytes, &path.display().to_string())
}

fn load_zoo(dir: &Path, device: &Device) -> Result<Zoo> {
    let (manifest, files) = read_dir(dir)?;
    Zoo::load(manifest, &files, device)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })
}

fn init_zoo(out: &Path, seed: u64, f32: bool, metric_networks: bool, identity: Option<&Path>) -> Result<()> {
    let precision = if f32 { StoredPrecision::F32 } else { StoredPrecision::F16 };
    let spec = TinyZooSpec { seed, precision, metric_networks, ..TinyZooSpec::default() };
    let (mut manifest, mut files) = spec.build()?;
    if let Some(path) = identity {
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
        let weights = TensorFile::from_safetensors(&bytes, &path.display().to_string())?;
        let entry = spec.identity_entry();
        manifest.networks.retain(|n| n.role != Role::Identity);
        manifest.description.push_str(&format!(" The identity network is trained ({}).", path.display()));
        files.insert(entry.file.clone(), weights.to_safetensors(precision));
        manifest.networks.push(entry);
        // Loading binds every key and shape, naming any that disagree.
        Zoo::load(manifest.clone(), &files, &burn::tensor::Device::flex()).map_err(|e| Error::config(format!("{}: not an identity network for this zoo: {e}", path.display())))?;
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

struct CamArgs<'a> {
    method: &'a str,
    layer: Option<String>,
    class: usize,
}

fn run(image: &Path, zoo_dir: &Path, detector: Option<String>, search: &SearchArgs, cam: CamArgs, truth_path: Option<&Path>, out: &Path) -> Result<()> {
    // Every flag is checked before any work starts.
    let config = search.config()?;
    let cam_method: CamMethod =
        serde_json::from_value(json!(cam.method)).map_err(|_| Error::config(format!("--cam `{}`: use grad_cam, grad_cam_plus_plus or layer_cam", cam.method)))?;
    let device = search.device()?;
    let zoo = load_zoo(zoo_dir, &device)?;
    let config = search.for_zoo(config, &zoo);
    let detector = detector.unwrap_or_else(|| zoo.detectors[0].0.clone());
    let victim = zoo.detector(&detector)?;
    if cam.layer.as_deref() == Some("list") {
        println!("{}", victim.layer_names().join("\n"));
        return Ok(());
    }
    let target = CamTarget { class: cam.class, layer: cam.layer };
    if let Some(layer) = &target.layer {
        victim.layer_index(layer)?;
    }
    let img = read_image(image)?;
    let truth = truth_path.map(|path| read_truth(path, &img).map(|t| t.at(zoo.generator.size))).transpose()?;
    let mask = search.mask(&zoo)?;
    let start = Instant::now();
    let result = unforge::block_on(explain_live(&zoo, &img, &detector, &mask, &config, Live::default(), &device, |p| match p {
        Progress::Tuning(t) if t.step % 20 == 0 || t.step + 1 == t.steps => {
            eprintln!("pivotal tuning {:>4}/{}  loss {:.5}  {:.2}s", t.step + 1, t.steps, t.loss, start.elapsed().as_secs_f32());
        }
        Progress::Tuning(_) => {}
        Progress::Search(r, _) => eprintln!("step {:>4}  P(fake) {:.4}  {:.2}s", r.step, r.p_fake[0], start.elapsed().as_secs_f32()),
    }))?;
    mkdir(out)?;
    let gain = result.residual.auto_gain();
    let inversion_gain = result.inversion_error.auto_gain();
    let maps = unforge::block_on(unforge::pipeline::cams(&zoo, &result, cam_method, &target, &device))?;
    let [cam_input, cam_rec, cam_cf] = [(0, &result.input), (1, &result.reconstruction), (2, &result.counterfactual)].map(|(i, img)| maps[i].overlay(img, 0.5));
    let localisation = match &truth {
        Some(altered) => {
            // Scored as `unforge eval` scores it, whatever CAM the pictures show.
            let grad_cam_fake;
            let scored = if cam_method == CamMethod::GradCam && target == CamTarget::fake() {
                &maps
            } else {
                grad_cam_fake = unforge::block_on(unforge::pipeline::cams(&zoo, &result, CamMethod::GradCam, &CamTarget::fake(), &device))?;
                &grad_cam_fake
            };
            Some(Localisation::of_counterfactual(&result, scored, altered))
        }
        None => None,
    };
    for (name, img) in [
        ("input.png", &result.input),
        ("reconstruction.png", &result.reconstruction),
        ("counterfactual.png", &result.counterfactual),
        ("residual_signed.png", &result.residual.signed_rgba(gain)),
        ("residual_magnitude.png", &result.residual.magnitude_rgba(gain)),
        ("inversion_error.png", &result.inversion_error.magnitude_rgba(inversion_gain)),
        ("cam_input.png", &cam_input),
        ("cam_reconstruction.png", &cam_rec),
        ("cam_counterfactual.png", &cam_cf),
    ] {
        write(&out.join(name), &img.encode_png())?;
    }
    let report = json!({
        "image": image.display().to_string(),
        "zoo": zoo.manifest.name,
        "search": config,
        "levels": search.levels,
        "rows": search.rows,
        "cam": { "method": cam_method, "target": target },
        "residual_gain": gain,
        "inversion_error_gain": inversion_gain,
        "truth": truth.is_some().then(|| json!({ "mask": truth_path.map(|p| p.display().to_string()), "localisation": localisation })),
        "result": result,
    });
    write(&out.join("report.json"), serde_json::to_string_pretty(&report).expect("json").as_bytes())?;
    println!(
        "{}: P(fake) {:.4} → {:.4} in {} steps ({}), written to {}",
        detector,
        result.p_fake_reconstruction,
        result.p_fake_counterfactual,
        result.steps,
        if result.success { "success" } else { "not reached" },
        out.display()
    );
    for s in &result.scores {
        println!("  {:<16} input {:.4}  reconstruction {:.4}  counterfactual {:.4}", s.detector, s.input, s.reconstruction, s.counterfactual);
    }
    if let Some(found) = &localisation {
        let shown = |a: Option<f64>| a.map_or("n/a (the mask is empty or covers the whole crop)".to_string(), |a| format!("{a:.3}"));
        println!("  against the ground-truth mask (AUROC, 0.5 is chance): residual {}, Grad-CAM drop {}", shown(found.change_auroc), shown(found.cam_auroc));
    }
    Ok(())
}

/// The ground-truth mask at `path` for `image` (the same size, cropped as the image is).
fn read_truth(path: &Path, image: &RgbaImage) -> Result<GroundTruth> {
    GroundTruth::for_image(&read_image(path)?, image).map_err(|e| Error::config(format!("{}: {e}", path.display())))
}

fn synth(split: &str, count: u64, start: u64, size: usize, out: &Path, sheet: bool) -> Result<()> {
    use unforge::synth::{contact_sheet, Label, Sample, Split};
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
        let s = Sample::generate(split, index, size);
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
    if sheet {
        write(&out.join("contact-sheet.png"), &contact_sheet(&sheet_images, 8)?.encode_png())?;
    }
    println!("wrote {count} {} images ({size} px) to {}", split.name(), out.display());
    Ok(())
}

fn samples(photo: &Path, face: &[usize], out: &Path, size: usize, synthetic: usize) -> Result<()> {
    let [x, y, side] = face else {
        return Err(Error::config(format!("--face takes x,y,side, got {face:?}")));
    };
    let bytes = std::fs::read(photo).map_err(|e| Error::Io { path: photo.display().to_string(), reason: e.to_string() })?;
    let img = RgbaImage::decode_png(&bytes, &photo.display().to_string())?;
    mkdir(out)?;
    write(&out.join("photo-face.png"), &img.crop(*x, *y, *side, *side)?.resize(size, size).encode_png())?;
    let mut rng = unforge::rng::SeededRng::new(11);
    for i in 1..=synthetic {
        write(&out.join(format!("synthetic-{i}.png")), &unforge::zoo_init::seeded_blob_image(&mut rng, size).encode_png())?;
    }
    // Fakes of the synthetic world with the real image they were made from and the mask of
    // what changed: a face swap, asymmetric eyes and upsampling traces (test split).
    use unforge::synth::{Sample, Split};
    for (i, index) in [1u64, 3, 7].into_iter().enumerate() {
        let s = Sample::generate(Split::Test, index, size);
        write(&out.join(format!("synth-fake-{}.png", i + 1)), &s.image.encode_png())?;
        write(&out.join(format!("synth-real-{}.png", i + 1)), &s.pristine.encode_png())?;
        write(&out.join(format!("synth-mask-{}.png", i + 1)), &RgbaImage::encode_gray_png(size, size, &s.mask))?;
    }
    println!("wrote {} samples to {}", synthetic + 10, out.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn convert(
    checkpoint: &Path,
    role: &str,
    out: &Path,
    name: Option<String>,
    input_size: Option<usize>,
    normalization: &str,
    f16: bool,
    encoder_variant: &str,
    manifest: Option<PathBuf>,
) -> Result<()> {
    use unforge::networks::e4e::EncoderVariant;
    use unforge::zoo::{Manifest, Role};
    let encoder_variant = match encoder_variant {
        "e4e" => EncoderVariant::Encoder4Editing,
        "psp" => EncoderVariant::GradualStyleEncoder,
        other => return Err(Error::config(format!("--encoder-variant `{other}`: use e4e or psp"))),
    };
    let role: Role = serde_json::from_value(json!(role)).map_err(|_| Error::config(format!("--role `{role}`: use generator, encoder, detector, identity or perceptual")))?;
    let normalization = serde_json::from_value(json!(normalization))
        .map_err(|_| Error::config(format!("--normalization `{normalization}`: use minus_one_one or image_net")))?;
    let file = out.file_name().and_then(|f| f.to_str()).ok_or_else(|| Error::config(format!("--out {}: not a file name", out.display())))?;
    let name = name.unwrap_or_else(|| out.file_stem().and_then(|s| s.to_str()).unwrap_or("network").to_string());
    let all = unforge::convert::read_checkpoint(checkpoint)?;
    let opts = unforge::convert::ConvertOptions { role, name: name.clone(), file: file.to_string(), input_size, normalization, encoder_variant };
    let converted = unforge::convert::convert(all, &opts)?;
    let precision = if f16 { StoredPrecision::F16 } else { StoredPrecision::F32 };
    write(out, &converted.tensors.to_safetensors(precision))?;
    let entry = serde_json::to_string_pretty(&converted.entry).expect("json");
    if let Some(path) = manifest {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
        let mut m: Manifest = serde_json::from_str(&text).map_err(|e| Error::manifest(format!("{}: {e}", path.display())))?;
        let e = converted.entry.clone();
        match m.networks.iter_mut().find(|n| n.name == e.name || (e.role != Role::Detector && n.role == e.role)) {
            Some(slot) => *slot = e,
            None => m.networks.push(e),
        }
        m.validate().map_err(|e| Error::manifest(format!("{} after adding `{name}`: {e}", path.display())))?;
        write(&path, m.to_json().as_bytes())?;
    }
    println!("{entry}");
    eprintln!("wrote {} ({} tensors)", out.display(), converted.tensors.tensors.len());
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(size: usize, cm: usize, steps: usize, json: bool, backend: &str) -> Result<()> {
    use unforge::networks::stylegan2::{Generator, GeneratorConfig};
    use unforge::networks::xception::{Xception, XceptionConfig};
    use unforge::networks::{Detector, DetectorNet, Normalization};
    use unforge::search::{read_vec, Objective};
    use unforge::weights::WeightSource;

    let device = open_backend(backend)?;
    let source = WeightSource::keyed(1);
    let cfg = GeneratorConfig::rosinality(size, cm);
    cfg.validate()?;
    let g = Generator::new(&source.root(&device), &cfg)?;
    let net = Xception::new(&source.root(&device), &XceptionConfig::original(2))?;
    let det = Detector { net: DetectorNet::Xception(net), input_size: size, normalization: Normalization::MinusOneOne };
    let latent = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(unforge::rng::SeededRng::new(2).normals(cfg.n_latent() * 512), [1, cfg.n_latent(), 512]),
        &device,
    );
    let objective = Objective::new(&g, &det, 0.0, unforge::search::Loss::Mse);
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let sync = |t: burn::tensor::Tensor<1>| unforge::block_on(read_vec(t)).map(|_| ());
    let gen_grad = || {
        let w = latent.clone().autodiff().require_grad();
        let grads = g.synthesize(w.clone()).mean().backward();
        sync(w.grad(&grads).expect("grad").reshape([-1]))
    };
    // Pivotal tuning's step: the generator's forward and backward to its weights, then Adam
    // (timed over a few steps so the copy made for tuning is a small part of it).
    const TUNING_STEPS: usize = 3;
    let target = g.synthesize(latent.clone()).detach() * 0.9;
    let tuning = PivotalTuning::steps(TUNING_STEPS);
    let tune = || {
        let tuned = unforge::block_on(tuning.tune(&g, latent.clone(), target.clone(), &mut |_| {}))?;
        sync(tuned.synthesize(latent.clone()).reshape([-1]))
    };
    let (mut gen_fwd, mut full_fwd, mut step, mut gen_step, mut tune_step) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..steps.max(1) + 1 {
        let a = time(&|| sync(g.synthesize(latent.clone()).reshape([-1])))?;
        let b = time(&|| sync(det.p_fake(g.synthesize(latent.clone()))))?;
        let c = time(&|| {
            let (_, _, grad) = objective.gradient(&latent);
            sync((latent.clone() - grad.sign() * 1e-3).reshape([-1]))
        })?;
        let d = time(&gen_grad)?;
        let e = time(&tune)? / TUNING_STEPS as f64;
        if i > 0 {
            tune_step.push(e);
            // The first round warms caches and allocators.
            gen_step.push(d);
            gen_fwd.push(a);
            full_fwd.push(b);
            step.push(c);
        }
    }
    let (a, b, c, d, e) = (median(gen_fwd), median(full_fwd), median(step), median(gen_step), median(tune_step));
    if json {
        println!("{}", json!({ "backend": backend, "size": size, "channel_multiplier": cm, "steps": steps, "generator_forward_s": a, "forward_s": b, "step_s": c, "generator_backward_s": d, "tuning_step_s": e }));
    } else {
        println!("one search step, {backend}, batch 1, generator {size} px (channel multiplier {cm}) + Xception at {size} px, median of {steps}:");
        println!("  generator forward            {a:.3} s");
        println!("  generator + detector forward {b:.3} s");
        println!("  generator forward + backward {d:.3} s");
        println!("  forward + backward + update  {c:.3} s");
        println!("  pivotal tuning step          {e:.3} s ({:.2}× the search step)", e / c);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::InitZoo { out, seed, f32, metric_networks, identity } => init_zoo(&out, seed, f32, metric_networks, identity.as_deref()),
        Command::Train(args) => train::run(&args),
        Command::Synth { split, count, start, size, out, contact_sheet } => synth(&split, count, start, size, &out, contact_sheet),
        Command::Samples { photo, face, out, size, synthetic } => samples(&photo, &face, &out, size, synthetic),
        Command::Bench { size, channel_multiplier, steps, json, backend } => bench(size, channel_multiplier, steps, json, &backend),
        Command::Convert { checkpoint, role, out, name, input_size, normalization, f16, encoder_variant, manifest } => {
            convert(&checkpoint, &role, &out, name, input_size, &normalization, f16, &encoder_variant, manifest)
        }
        Command::Run { image, zoo, detector, search, cam, cam_layer, cam_class, truth, out } => {
            run(&image, &zoo, detector, &search, CamArgs { method: &cam, layer: cam_layer, class: cam_class }, truth.as_deref(), &out)
        }
        Command::Eval { data, zoo, victims, attacks, search, eps, pixel_alpha, pixel_steps, level_ablation, alphas, curve, id_threshold, limit, out } => {
            let plan = EvalArgs { victims, attacks, eps, pixel_alpha, pixel_steps, level_ablation, alphas, curve, id_threshold, limit };
            eval::run(&data, &zoo, &search, plan, &out)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

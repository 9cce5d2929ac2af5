//! The fuzz targets: every parser of untrusted bytes, each fed anything. A target may return
//! an error (that is the point); it must not panic, hang or run out of memory. The same
//! functions run under libFuzzer (`fuzz/`, nightly) and in the stable replay of
//! `tests/fuzzing.rs`.

use unforge::image::RgbaImage;
use unforge::inversion::LatentCodes;
use unforge::weights::TensorFile;
use unforge::zoo::Manifest;

/// Image decoding with its size checks before the decode (what `unforge run` reads).
pub fn png(data: &[u8]) {
    if let Ok(img) = RgbaImage::decode_png(data, "fuzz.png") {
        assert_eq!(img.data.len(), img.width * img.height * 4, "decoded size");
    }
}

/// Safetensors weight files, and the W+ code files read the same way.
pub fn safetensors(data: &[u8]) {
    let _ = TensorFile::from_safetensors(data, "fuzz.safetensors");
    let _ = TensorFile::metadata_of(data, "fuzz.safetensors");
    let _ = LatentCodes::from_safetensors(data, "fuzz.safetensors");
}

/// `zoo.json`.
pub fn manifest(data: &[u8]) {
    let _ = Manifest::from_json(&String::from_utf8_lossy(data));
}

/// The `.pt` / `.pth` zip-and-pickle reader of `unforge convert` (checkpoints come from
/// strangers). The reader takes a path, so the bytes go through a file of this thread's own.
pub fn checkpoint(data: &[u8]) {
    let path =
        std::env::temp_dir().join(format!("unforge-fuzz-{}-{:?}.pt", std::process::id(), std::thread::current().id()));
    std::fs::write(&path, data).expect("a scratch file");
    let _ = unforge::convert::read_checkpoint(&path);
}

//! The fuzz targets on stable, briefly: each target's committed corpus (`fuzz/corpus/TARGET/`,
//! plus the conversion fixtures for the checkpoint reader), then seeded mutations of it for a
//! few seconds (`UNFORGE_FUZZ_SECONDS`, default 10). The long, coverage-guided runs are
//! libFuzzer's (`tools/fuzz.sh`, nightly); this keeps every target honest in CI. A panic
//! names the input and keeps it under `test-artifacts/fuzz/` to replay.

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unforge::rng::SeededRng;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        seeds.extend(paths.iter().filter(|p| p.is_file()).map(|p| std::fs::read(p).unwrap()));
    }
    assert!(!seeds.is_empty(), "no seeds in {dirs:?}");
    seeds
}

/// One mutation of a seed, of the kinds libFuzzer's default mutator makes.
fn mutate(rng: &mut SeededRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut SeededRng, n: usize| rng.range(0, n.max(1) as u64) as usize;
    let mut b = seeds[pick(rng, seeds.len())].clone();
    for _ in 0..1 + pick(rng, 4) {
        let at = pick(rng, b.len());
        match pick(rng, 7) {
            0 if !b.is_empty() => b[at] ^= 1 << pick(rng, 8),
            1 if !b.is_empty() => b[at] = [0, 0xff, 0x7f, 0x80, b'{', b'"', b'0'][pick(rng, 7)],
            2 => b.truncate(at),
            3 => {
                let n = pick(rng, 16);
                let bytes: Vec<u8> = (0..n).map(|_| pick(rng, 256) as u8).collect();
                b.splice(at..at, bytes);
            }
            4 if b.len() >= at + 4 => {
                let v = [u32::MAX, 1 << 31, 1 << 24, 0, 65536][pick(rng, 5)];
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            5 => {
                // Splice in a piece of another seed.
                let other = &seeds[pick(rng, seeds.len())];
                let from = pick(rng, other.len());
                let piece = other[from..(from + pick(rng, 64)).min(other.len())].to_vec();
                b.splice(at..at, piece);
            }
            _ if b.len() > 1 => {
                let (from, n) = (pick(rng, b.len()), pick(rng, 32));
                let piece = b[from..(from + n).min(b.len())].to_vec();
                b.splice(at..at, piece);
            }
            _ => b.push(pick(rng, 256) as u8),
        }
    }
    b
}

/// Runs `target` on every seed, then on mutations until the time budget is spent.
fn exercise(name: &str, target: fn(&[u8]), dirs: &[PathBuf]) {
    let seeds = corpus(dirs);
    let budget =
        Duration::from_secs(std::env::var("UNFORGE_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10));
    let mut rng = SeededRng::new(0xF022 ^ name.len() as u64);
    let started = Instant::now();
    let mut runs = 0usize;
    let mut input = |data: Vec<u8>| {
        runs += 1;
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            let dir = root().join("test-artifacts/fuzz");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}-crash-{runs}"));
            std::fs::write(&path, &data).unwrap();
            panic!("{name}: input {runs} panicked; kept as {}", path.display());
        }
    };
    for seed in &seeds {
        input(seed.clone());
    }
    while started.elapsed() < budget {
        input(mutate(&mut rng, &seeds));
    }
    println!("{name}: {runs} inputs in {:.1} s", started.elapsed().as_secs_f64());
    assert!(runs > seeds.len(), "{name}: no mutations ran");
}

fn dir(target: &str) -> PathBuf {
    root().join("fuzz/corpus").join(target)
}

#[test]
fn png_decoding() {
    exercise("png", targets::png, &[dir("png")]);
}

#[test]
fn safetensors_files() {
    exercise("safetensors", targets::safetensors, &[dir("safetensors")]);
}

#[test]
fn zoo_manifests() {
    exercise("manifest", targets::manifest, &[dir("manifest")]);
}

#[test]
fn pytorch_checkpoints() {
    let fixtures = root().join("tests/fixtures/convert");
    exercise("checkpoint", targets::checkpoint, &[dir("checkpoint"), Path::new(&fixtures).to_path_buf()]);
}

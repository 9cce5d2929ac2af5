// The search runs here, off the page's thread. The page sends `load` once, then `run`.
import init, { Session } from './pkg/unforge.js';

let session = null;

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

// `auto` takes WebGPU only when it runs on real hardware: a software fallback adapter
// (SwiftShader) is far slower than the WebAssembly CPU path.
async function chooseBackend(preference) {
  if (preference !== 'auto') return { backend: preference, note: null };
  if (!('gpu' in navigator)) return { backend: 'cpu', note: 'WebGPU is not available in this browser' };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { backend: 'cpu', note: 'WebGPU is not available in this browser (no adapter)' };
  if (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter) {
    return { backend: 'cpu', note: 'WebGPU here is a software fallback adapter, slower than the CPU path' };
  }
  return { backend: 'auto', note: null };
}

async function load({ backend: preference, base = 'models/' }) {
  const t0 = performance.now();
  const { backend, note } = await chooseBackend(preference);
  await init();
  const res = await fetch(base + 'zoo.json');
  if (!res.ok) throw new Error(`${base}zoo.json: HTTP ${res.status}`);
  const manifestText = await res.text();
  const manifest = JSON.parse(manifestText);
  const files = new Map();
  for (const net of manifest.networks) files.set(net.file, await fetchBytes(base + net.file));
  session = await Session.create(manifestText, files, backend);
  return {
    type: 'loaded', backend: session.backend, fallbackReason: session.fallbackReason ?? note,
    detectors: session.detectors, nLatent: session.nLatent, imageSize: session.imageSize, presets: Session.presets(),
    zoo: manifest.name, loadMs: performance.now() - t0,
  };
}

async function run({ image, options }) {
  if (!session) throw new Error('models are not loaded yet');
  const t0 = performance.now();
  let last = t0;
  const result = await session.explain(new Uint8Array(image.data), image.width, image.height, options, (s) => {
    const now = performance.now();
    postMessage({ type: 'step', step: s.step, pFake: s.pFake, loss: s.loss, ms: now - last });
    last = now;
  });
  return { type: "done", result, totalMs: performance.now() - t0 };
}

onmessage = async ({ data }) => {
  try {
    if (data.type === 'load') postMessage(await load(data));
    else if (data.type === 'run') postMessage(await run(data));
  } catch (e) {
    postMessage({ type: 'error', during: data.type, message: String(e?.message ?? e) });
  }
};

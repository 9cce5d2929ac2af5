// The benchmark page's worker: builds the keyed networks on the chosen backend and times whole
// search steps, posting each one. Messages: in { size, channelMultiplier, detectorSize, backend,
// steps }; out { type: 'ready', backend, fallbackReason, buildMs }, { type: 'step', index, ms },
// { type: 'done' }, { type: 'error', message }.
import init, { StepBenchmark } from './pkg/unforge.js';

let ready = null;

onmessage = async ({ data }) => {
  try {
    ready ??= init({ module_or_path: new URL('./pkg/unforge_bg.wasm', import.meta.url) });
    await ready;
    const t0 = performance.now();
    const bench = await StepBenchmark.create(data.size, data.channelMultiplier, data.detectorSize, data.backend);
    postMessage({ type: 'ready', backend: bench.backend, fallbackReason: bench.fallbackReason ?? null, buildMs: performance.now() - t0 });
    for (let index = 0; index < data.steps; index++) {
      const t = performance.now();
      await bench.step();
      postMessage({ type: 'step', index, ms: performance.now() - t });
    }
    bench.free();
    postMessage({ type: 'done' });
  } catch (e) {
    postMessage({ type: 'error', message: String(e?.message ?? e) });
  }
};

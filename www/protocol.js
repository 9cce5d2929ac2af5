// The page ↔ worker protocol, in one place. The page posts requests; the worker answers each
// with one reply and, while it works, with news. Every message is `{ type, ...fields }`.
//
// Requests (page → worker)
//   load        { backend: 'auto'|'webgpu'|'cpu', base: 'models/' | null, files: File[] | null,
//                 testLoseGpuAfterStep: N | null }   (the test hook: destroy the GPU device after N steps)
//   run         { image: { data, width, height }, options }   options: the core's ExplainOptions,
//               plus `truth` ({ data, width, height, name }) and `imageName`
//   faces       { id, image: { data, width, height } }        the faces of a picture (BlazeFace)
//   residual    { before, after, size, gain }                  the residual drawn at a new gain
//   cache-info  {}
//   cache-clear {}
//   memory      {}                                             the worker's memory, for diagnostics
//
// Replies and news (worker → page)
//   progress    { index, file, loaded, total, cached }   a weight file (or shard) arriving (during
//               load; index -1: the WebAssembly core)
//   loaded      { backend, fallbackReason, detectors, nLatent, imageSize, presets, tuneSteps, domain,
//                 previewSizes, zoo, source, zooKey,      reply to load (wasmBytes: the core's
//                 loadMs, bytes, wasmBytes }              memory once the networks are in)
//   stage       { stage }                                a stage of the explanation begins
//               (inverting, tuning, reusing: a kept inversion, searching, rendering, explaining)
//   tuning      { step, steps, loss }                    a pivotal tuning step (during run)
//   step        { step, pFake, pFakeAll, thumbnail, loss, ms }   a search step (during run)
//   done        { result, totalMs }                      reply to run: pictures and `report`
//   faces       { id, faces, backend, ms }               reply to faces: each face's score, bbox,
//               keypoints, quad (FFHQ corners), centre, side and angle (radians), in the
//               picture's pixels, best first; `largest` marks the one to snap to
//   residual    { signed, magnitude, size }              reply to residual
//   cache       { bytes, files, available }              reply to cache-info and cache-clear
//   memory      { wasmBytes, jsHeapBytes }               reply to memory (jsHeapBytes: null where
//               the browser does not say)
//   error       { during, message, gpuLost? }            any request that failed (gpuLost: the WebGPU
//               device was lost during a run)
export const REQUESTS = ['load', 'run', 'faces', 'residual', 'cache-info', 'cache-clear', 'memory'];
export const REPLIES = ['progress', 'loaded', 'stage', 'tuning', 'step', 'done', 'faces', 'residual', 'cache', 'memory', 'error'];

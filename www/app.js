// The page: gets an image in, hands it to the worker, draws what comes back. All compute
// and all model bytes stay in the worker (its messages: protocol.js); nothing is sent anywhere.
// Each concern has its module: input.js and crop.js (the image), settings.js (the options),
// progress.js (a run as it happens), results.js (what came back), downloads.js (files).
import { decodeFile, startCamera, grabFrame } from './input.js';
import { SquareCrop, BACKGROUND } from './crop.js';
import { REPLIES } from './protocol.js';
import { $, setState, refreshRun, whenImage, showBanner, showInputError, showInputWarning, formatBytes, draw } from './ui.js';
import { applyPreset, watchPreset, readOptions, showPreviewSizes } from './settings.js';
import { startRun, searchStarts, markReused, addStep, drawChart } from './progress.js';
import { showResult, drawCams, drawCompare } from './results.js';
import { wireDownloads } from './downloads.js';

const CROP_SIZE = 256;

// Everything the page knows between messages.
const state = {
  // From the loaded zoo.
  backend: null,
  presets: {},
  detectors: [],
  zooKey: null,
  // What the zoo was trained on (its manifest's `domain`), and the generator's side.
  domain: null,
  imageSize: null,
  // Which zoo to load: a folder on this site, or local files.
  zoo: { base: 'models/', files: null },
  // The image's ground-truth mask, when it is a sample with one: { bitmap, name }.
  truth: null,
  // The name of the image, sent with it into the report, and what it is: `synthetic` (a
  // sample of the synthetic world) or `photographs` (a sample photograph, a file, the webcam).
  imageName: null,
  imageDomain: null,
  stopCamera: null,
  // The result on screen, and whether the last reload was a Cancel.
  result: null,
  cancelled: false,
};
const crop = new SquareCrop($('crop'), $('zoom'));
whenImage(() => crop.bitmap !== null);
let worker = null;

// ---- the worker ----------------------------------------------------------------------------

function startWorker() {
  worker?.terminate();
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => handlers[data.type](data);
  // A face search the old worker never answered is asked of the new one.
  const lost = [...pendingFaces.values()].find((asked) => asked.bitmap === crop.bitmap);
  pendingFaces.clear();
  if (lost) findFaces(lost.bitmap);
  worker.onerror = (e) => {
    // A worker that dies (out of memory, a lost GPU device) is replaced by a CPU one.
    showBanner(`The compute worker stopped (${e.message || 'no reason given'}); reloading on the CPU.`);
    $('backend-choice').value = 'cpu';
    load();
  };
}

function load() {
  startWorker();
  setState('loading', 'Loading models…');
  $('model-progress').replaceChildren();
  // A test hook, on only when the address asks for it: the worker destroys its WebGPU device
  // after this many search steps.
  const loseGpu = new URLSearchParams(location.search).get('test-lose-gpu-after');
  const testLoseGpuAfterStep = loseGpu === null ? null : Number(loseGpu);
  worker.postMessage({ type: 'load', backend: $('backend-choice').value, base: state.zoo.base, files: state.zoo.files, testLoseGpuAfterStep });
}

const handlers = {
  progress({ index, file, loaded, total, cached }) {
    const box = $('model-progress');
    let row = box.querySelector(`[data-index="${index}"]`);
    if (!row) {
      row = document.createElement('div');
      row.className = 'file-progress';
      row.dataset.index = index;
      const bar = document.createElement('progress');
      bar.setAttribute('aria-label', `${file} download`);
      row.append(document.createElement('span'), bar);
      box.append(row);
    }
    const [label, bar] = row.children;
    label.textContent = `${file} ${formatBytes(loaded)}${total ? ` / ${formatBytes(total)}` : ''}${cached ? ' (cached)' : ''}`;
    bar.max = total || 1;
    bar.value = total ? loaded : 0;
  },
  loaded(data) {
    state.backend = data.backend;
    state.presets = data.presets ?? {};
    state.detectors = data.detectors;
    state.domain = data.domain ?? null;
    state.imageSize = data.imageSize;
    showDomain();
    checkImage();
    const name = data.backend === 'webgpu' ? 'WebGPU' : 'CPU (WebAssembly)';
    $('backend').textContent = `Backend: ${name} · zoo ${data.zoo} (${data.source}, ${formatBytes(data.bytes)}) · loaded in ${(data.loadMs / 1000).toFixed(1)} s${data.tuneSteps ? ` · recommends ${data.tuneSteps} steps of pivotal tuning` : ''}`;
    $('backend').dataset.backend = data.backend;
    if (!state.rerun) showBanner(data.fallbackReason ? `Running on the CPU: ${data.fallbackReason}.` : '');
    $('detector').replaceChildren(...data.detectors.map((d) => new Option(d, d)));
    applyPreset(state.presets, $('preset').value);
    // A new zoo brings its own pivotal tuning; a reload of the same one (Cancel) keeps the
    // user's setting.
    if (data.zooKey !== state.zooKey) $('tune-steps').value = data.tuneSteps ?? 0;
    showPreviewSizes(data, data.zooKey !== state.zooKey);
    state.zooKey = data.zooKey;
    if (state.cancelled) setState('cancelled', 'Cancelled.');
    else setState('ready', crop.bitmap ? 'Ready. Press Explain.' : 'Ready. Pick an image, then press Explain.');
    state.cancelled = false;
    worker.postMessage({ type: 'cache-info' });
    if (state.rerun) {
      state.rerun = false;
      run();
    }
  },
  stage({ stage }) {
    if (stage === 'searching') searchStarts();
    if (stage === 'reusing') {
      markReused();
      setState('running', 'The same face and tuning as the last run: its inversion is reused; searching…');
    }
  },
  tuning({ step, steps, loss }) {
    $('run-progress').max = steps;
    $('run-progress').value = step + 1;
    setState('running', `Tuning the generator to this image: step ${step + 1} of ${steps} (pixel MSE ${loss.toExponential(2)})…`);
  },
  step(data) {
    addStep(data, state.detectors);
  },
  done({ result }) {
    state.result = result;
    showResult(result, state.backend, drawResidual, domainCaveat());
    setState('done', 'Done.');
    worker.postMessage({ type: 'memory' });
  },
  // After each explanation: what the worker holds, for anyone loading a large zoo.
  memory({ wasmBytes, jsHeapBytes }) {
    const heap = jsHeapBytes === null ? '' : `, JS heap ${formatBytes(jsHeapBytes)}`;
    $('memory').textContent = `Worker memory: core ${formatBytes(wasmBytes)}${heap}.`;
  },
  faces: facesFound,
  residual({ signed, magnitude, size }) {
    draw('residual', $('residual-kind').value === 'signed' ? signed : magnitude, size);
  },
  cache({ bytes, files, available }) {
    $('cache').textContent = available ? `Weights cache: ${files} files, ${formatBytes(bytes)} on this device.` : 'Weights cache: not available here.';
  },
  error(data) {
    if (state.backend === 'webgpu' && data.during === 'run' && (data.gpuLost || /lost|device|gpu|out of memory|outofmemory/i.test(data.message))) {
      // The GPU went away (driver reset, another tab, sleep) or ran out of memory: the same
      // image and settings are explained again on the CPU, in a new worker.
      const what = /out of memory|outofmemory/i.test(data.message) ? 'The GPU ran out of memory' : 'The WebGPU device was lost';
      showBanner(`${what} (${data.message}); continuing on the CPU with the same image and settings.`);
      $('backend-choice').value = 'cpu';
      state.rerun = true;
      load();
      return;
    }
    if (data.during === 'faces') {
      facesFailed(data.message);
      return;
    }
    if (data.during === 'load') {
      setState('failed', `Error: ${data.message}`);
      showBanner(`The zoo could not be loaded: ${data.message}`);
    } else {
      setState('error', `Error: ${data.message}`);
    }
  },
};
if (Object.keys(handlers).sort().join() !== [...REPLIES].sort().join()) throw new Error('app.js and protocol.js disagree');

// ---- input ---------------------------------------------------------------------------------

// What the zoo knows, where the image is chosen.
function showDomain() {
  const d = state.domain;
  $('domain').textContent = d ? `This zoo was trained on ${d.trained_on}.` : 'This zoo does not say what it was trained on.';
}

// The warning for an image the zoo was not trained on, or null.
function domainCaveat() {
  const d = state.domain;
  if (!d || !state.imageDomain || d.kind === 'photographs') return null;
  if (d.kind === 'synthetic' && state.imageDomain !== 'synthetic') {
    return 'This zoo knows only synthetic faces: on a photograph its scores mean nothing.';
  }
  if (d.kind === 'untrained') return 'This zoo is untrained (seeded random weights): only the mechanics mean anything.';
  return null;
}

// The warnings an image deserves before it is explained: outside the zoo's domain, or so small
// that the networks see it upscaled.
function checkImage() {
  const caveat = domainCaveat();
  const warning = $('domain-warning');
  warning.hidden = !caveat;
  warning.replaceChildren();
  if (caveat) {
    const link = document.createElement('a');
    link.href = 'real-checkpoints.html';
    link.textContent = 'How to use real checkpoints';
    warning.append(`${caveat} `, link, '.');
  }
  if (!crop.bitmap) return showInputWarning('');
  // What the networks see of the crop: the page sends at most CROP_SIZE px.
  const size = Math.min(state.imageSize ?? CROP_SIZE, CROP_SIZE);
  const factor = crop.upscale(size);
  const { width, height } = crop.bitmap;
  showInputWarning(factor > 1.5 ? `${width}×${height}: the face is upscaled ${factor.toFixed(1)}× to the networks’ ${size} px; results will be blurred.` : '');
}

// ---- faces ---------------------------------------------------------------------------------

// A photograph's faces are found in the worker; the crop snaps to the largest one's FFHQ
// square. Replies to an earlier picture are ignored.
let faceRequest = 0;
const FACE_INPUT = 1024;

function showFaces(list) {
  const bar = $('faces');
  bar.replaceChildren();
  bar.hidden = list.length < 2;
  const pick = (i) => {
    crop.snap(list[i]);
    bar.querySelectorAll('button').forEach((b, j) => b.setAttribute('aria-pressed', String(i === j)));
    checkImage();
  };
  list.forEach((f, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = `Face ${i + 1}`;
    b.title = `score ${f.score.toFixed(2)}, ${Math.round(f.bbox[2] - f.bbox[0])} px wide`;
    b.addEventListener('click', () => pick(i));
    bar.append(b);
  });
  const whole = document.createElement('button');
  whole.type = 'button';
  whole.className = 'secondary';
  whole.textContent = 'Manual crop';
  whole.addEventListener('click', () => { crop.set(crop.bitmap); bar.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', 'false')); checkImage(); });
  bar.append(whole);
  // The largest face first, as the core marks it (the detector's order is by score).
  if (list.length) pick(list.findIndex((f) => f.largest));
}

function findFaces(bitmap) {
  const id = ++faceRequest;
  $('faces').hidden = true;
  $('face-status').textContent = 'Looking for faces…';
  // The detector sees 256 px: a copy with its longer side at most FACE_INPUT px is plenty.
  const k = Math.min(1, FACE_INPUT / Math.max(bitmap.width, bitmap.height));
  const [w, h] = [Math.max(1, Math.round(bitmap.width * k)), Math.max(1, Math.round(bitmap.height * k))];
  const off = new OffscreenCanvas(w, h);
  const ctx = off.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0, w, h);
  const { data } = ctx.getImageData(0, 0, w, h);
  pendingFaces.set(id, { bitmap, kx: bitmap.width / w, ky: bitmap.height / h });
  worker.postMessage({ type: 'faces', id, image: { data: data.buffer, width: w, height: h } }, [data.buffer]);
}
const pendingFaces = new Map();

function facesFound({ id, faces, ms }) {
  const asked = pendingFaces.get(id);
  pendingFaces.delete(id);
  if (!asked || id !== faceRequest || crop.bitmap !== asked.bitmap) return;
  const { kx, ky } = asked;
  const scaled = faces.map((f) => ({
    ...f,
    bbox: [f.bbox[0] * kx, f.bbox[1] * ky, f.bbox[2] * kx, f.bbox[3] * ky],
    centre: [f.centre[0] * kx, f.centre[1] * ky],
    side: f.side * kx,
  }));
  $('face-status').textContent = scaled.length === 0
    ? 'No face found: move and zoom the square by hand.'
    : `${scaled.length === 1 ? 'One face' : `${scaled.length} faces`} found (${Math.round(ms)} ms); the crop is its FFHQ alignment${scaled.length > 1 ? ' (pick another below)' : ''}. Drag or zoom to adjust.`;
  $('face-status').dataset.faces = String(scaled.length);
  showFaces(scaled);
}

function facesFailed(message) {
  pendingFaces.clear();
  $('face-status').textContent = `Faces could not be looked for (${message}); crop by hand.`;
  $('face-status').dataset.faces = 'error';
}

// `truth`: a sample's ground-truth mask, `{ bitmap, name }`; `domain`: what the image is.
async function useBitmap(bitmap, name, domain, truth = null) {
  showInputError('');
  crop.set(bitmap);
  // Synthetic samples are already in their world's frame; photographs are aligned.
  $('faces').hidden = true;
  $('face-status').textContent = '';
  delete $('face-status').dataset.faces;
  if (domain === 'photographs') findFaces(bitmap);
  state.truth = truth;
  state.imageName = name;
  state.imageDomain = domain;
  checkImage();
  refreshRun();
  if (document.body.dataset.state === 'ready') setState('ready', 'Ready. Press Explain.');
}

// A refused file leaves nothing behind: no crop of the image before it, no Explain.
function refuse(message) {
  crop.clear();
  faceRequest++;
  $('faces').hidden = true;
  $('face-status').textContent = '';
  state.truth = null;
  state.imageName = null;
  state.imageDomain = null;
  showInputError(message);
  checkImage();
  refreshRun();
}

async function useFile(file) {
  document.querySelectorAll('input[name=sample]').forEach((r) => { r.checked = false; });
  try {
    await useBitmap(await decodeFile(file), file.name, 'photographs');
  } catch (e) {
    refuse(e.message);
  }
}

async function useSample(radio) {
  const res = await fetch(radio.value);
  const bitmap = await createImageBitmap(await res.blob());
  let truth = null;
  if (radio.dataset.mask) {
    truth = { bitmap: await createImageBitmap(await (await fetch(radio.dataset.mask)).blob()), name: radio.dataset.mask };
  }
  await useBitmap(bitmap, radio.value, radio.dataset.domain, truth);
}

document.querySelectorAll('input[name=sample]').forEach((r) => r.addEventListener('change', () => useSample(r)));
$('file').addEventListener('change', () => $('file').files[0] && useFile($('file').files[0]));
const zone = $('dropzone');
zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  const file = e.dataTransfer.files[0];
  if (file) useFile(file);
  else refuse('The drop held no file.');
});
document.addEventListener('paste', (e) => {
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
  if (item) useFile(item.getAsFile());
});
$('camera').addEventListener('click', async () => {
  try {
    state.stopCamera = await startCamera($('video'));
    $('video').hidden = false;
    $('snap').hidden = false;
  } catch (e) {
    showInputError(`Webcam: ${e.message}`);
  }
});
$('snap').addEventListener('click', async () => {
  await useBitmap(await grabFrame($('video')), 'webcam.png', 'photographs');
  state.stopCamera?.();
  $('video').hidden = true;
  $('snap').hidden = true;
});

// ---- running -------------------------------------------------------------------------------

function run() {
  if (!crop.bitmap) {
    showInputError('Pick an image first.');
    return;
  }
  let options;
  try {
    options = readOptions(state);
  } catch (e) {
    setState('error', e.message);
    return;
  }
  startRun();
  $('summary').textContent = '';
  drawChart(state.detectors);
  const tuneSteps = options.search.tuneSteps;
  setState('running', tuneSteps > 0 ? `Inverting, tuning the generator (${tuneSteps} steps) and searching…` : 'Inverting and searching…');
  // The page's crop, at the crop canvas's size; a sample's ground-truth mask is cut by the
  // same crop, and the core scores the explanation against it.
  const image = crop.pixels(CROP_SIZE);
  const truth = state.truth ? { ...crop.pixels(CROP_SIZE, state.truth.bitmap), name: state.truth.name } : null;
  const transfer = truth ? [image.data, truth.data] : [image.data];
  worker.postMessage({ type: 'run', image, options: { ...options, imageName: state.imageName, ...(truth ? { truth } : {}) } }, transfer);
}

// Cancel stops the worker outright (a search step cannot be interrupted) and starts a fresh
// one; the weights come back from the cache.
function cancel() {
  state.cancelled = true;
  // The cancelled run's progress, chart, thumbnails and log go; the last result stays.
  startRun();
  drawChart(state.detectors);
  load();
  setState('loading', 'Cancelled; reloading the models…');
}

// The residual at the slider's gain is drawn by the core, in the worker.
function drawResidual() {
  const r = state.result;
  if (!r) return;
  worker.postMessage({ type: 'residual', before: r.reconstruction, after: r.counterfactual, size: r.size, gain: r.report.residual_gain * Number($('gain').value) });
}

for (const id of ['gain', 'residual-kind']) $(id).addEventListener('input', drawResidual);
// A zoom changes how much the face is upscaled.
$('zoom').addEventListener('input', checkImage);
$('opacity').addEventListener('input', () => drawCams(state.result));
$('compare-slider').addEventListener('input', () => drawCompare(state.result));
wireDownloads(() => state.result);
watchPreset(() => state.presets);

// ---- models --------------------------------------------------------------------------------

function folder(url) {
  return url.endsWith('/') ? url : `${url}/`;
}

$('cache-clear').addEventListener('click', () => worker.postMessage({ type: 'cache-clear' }));
$('zoo-load').addEventListener('click', () => {
  const files = [...$('zoo-files').files];
  const url = $('zoo-url').value.trim();
  if (!files.length && !url) {
    showBanner('Give a folder on this site or choose the zoo.json and its weight files.');
    return;
  }
  state.zoo = files.length ? { base: null, files } : { base: folder(url), files: null };
  load();
});
$('zoo-default').addEventListener('click', () => {
  state.zoo = { base: 'models/', files: null };
  load();
});

$('run').addEventListener('click', run);
$('cancel').addEventListener('click', cancel);
$('backend-choice').addEventListener('change', load);
// `?backend=webgpu|cpu|auto` picks the backend and `?zoo=FOLDER` (on this site) the zoo before
// the first load (talks, tests).
const query = new URLSearchParams(location.search);
const wanted = query.get('backend');
if (['auto', 'webgpu', 'cpu'].includes(wanted)) $('backend-choice').value = wanted;
if (query.get('zoo')) state.zoo = { base: folder(query.get('zoo')), files: null };
load();
useSample(document.querySelector('input[name=sample]:checked'));
// Works offline after the first visit.
if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});

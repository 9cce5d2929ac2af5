// The page: gets an image in, hands it to the worker, draws what comes back. All compute
// and all model bytes stay in the worker; nothing is sent anywhere.
import { decodeFile, startCamera, grabFrame } from './input.js';
import { SquareCrop } from './crop.js';
import { zip } from './zip.js';

const $ = (id) => document.getElementById(id);
const CROP_SIZE = 256;
const COLORS = ['#f28b50', '#8ab4f8', '#81c995', '#fdd663', '#c58af9', '#ff8bcb'];
const state = {
  steps: [], stepMs: [], laterMsSum: 0, all: [], backend: null, presets: {}, detectors: [], result: null,
  zoo: { base: 'models/', files: null }, started: 0, stopCamera: null, truth: null, pending: null, truthName: null,
};
const crop = new SquareCrop($('crop'), $('zoom'));
let worker = null;

function setState(s, message) {
  document.body.dataset.state = s;
  if (message !== undefined) $('status').textContent = message;
  $('run').disabled = !['ready', 'done', 'error', 'cancelled'].includes(s);
  $('cancel').disabled = s !== 'running';
}

function showBanner(text) {
  $('banner').textContent = text;
  $('banner').hidden = !text;
}

function showInputError(text) {
  $('input-error').textContent = text;
  $('input-error').hidden = !text;
}

// ---- the worker ---------------------------------------------------------------------------

function startWorker() {
  worker?.terminate();
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => handlers[data.type]?.(data);
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
  worker.postMessage({ type: 'load', backend: $('backend-choice').value, base: state.zoo.base, files: state.zoo.files });
}

function formatBytes(n) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} kB`;
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
    const name = data.backend === 'webgpu' ? 'WebGPU' : 'CPU (WebAssembly)';
    $('backend').textContent = `Backend: ${name} · zoo ${data.zoo} (${data.source}, ${formatBytes(data.bytes)}) · loaded in ${(data.loadMs / 1000).toFixed(1)} s${data.tuneSteps ? ` · recommends ${data.tuneSteps} steps of pivotal tuning` : ''}`;
    $('backend').dataset.backend = data.backend;
    showBanner(data.fallbackReason ? `Running on the CPU: ${data.fallbackReason}.` : '');
    $('detector').replaceChildren(...data.detectors.map((d) => new Option(d, d)));
    applyPreset($('preset').value);
    // A new zoo brings its own pivotal tuning; a reload of the same one (Cancel) keeps the
    // user's setting.
    if (data.zooKey !== state.zooKey) $('tune-steps').value = data.tuneSteps ?? 0;
    state.zooKey = data.zooKey;
    if (state.cancelled) setState('cancelled', 'Cancelled.');
    else setState('ready', 'Ready. Pick an image and press Explain.');
    state.cancelled = false;
    worker.postMessage({ type: 'cache-info' });
  },
  residual({ signed, magnitude, size }) {
    draw('residual', $('residual-kind').value === 'signed' ? signed : magnitude, size);
  },
  cache({ bytes, files, available }) {
    $('cache').textContent = available ? `Weights cache: ${files} files, ${formatBytes(bytes)} on this device.` : 'Weights cache: not available here.';
  },
  tuning({ step, steps, loss }) {
    $('run-progress').max = steps;
    $('run-progress').value = step + 1;
    setState('running', `Tuning the generator to this image: step ${step + 1} of ${steps} (pixel MSE ${loss.toExponential(2)})…`);
  },
  step(data) {
    state.steps.push(data.pFake);
    state.stepMs.push(data.ms);
    if (state.stepMs.length > 1) state.laterMsSum += data.ms;
    if (data.pFakeAll) state.all.push(Array.from(data.pFakeAll));
    const li = document.createElement('li');
    li.textContent = `P(fake) ${data.pFake.toFixed(4)} · ${data.ms.toFixed(0)} ms`;
    $('steps-log').append(li);
    const max = Number($('steps').value);
    const per = meanStepMs() ?? data.ms;
    const eta = Math.max(0, (max - data.step - 1) * per) / 1000;
    $('run-progress').max = max;
    $('run-progress').value = data.step + 1;
    $('status').textContent = `Step ${data.step + 1} of at most ${max}: P(fake) ${data.pFake.toFixed(4)} · ${data.ms.toFixed(0)} ms/step · at most ${eta.toFixed(0)} s left`;
    if (data.thumbnail) addThumbnail(data.thumbnail, data.step);
    drawChart();
  },
  done({ result }) {
    state.result = result;
    // The report pairs the result with the settings and the mask of the run that made it.
    ({ options: state.options, mask: state.truthName } = state.pending);
    showResult(result);
    setState('done', 'Done.');
  },
  error(data) {
    if (state.backend === 'webgpu' && data.during === 'run' && /lost|device|gpu/i.test(data.message)) {
      // The GPU went away (driver reset, another tab, sleep): carry on on the CPU.
      showBanner(`The WebGPU device was lost (${data.message}); reloading on the CPU. Press Explain again.`);
      $('backend-choice').value = 'cpu';
      load();
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

// ---- input --------------------------------------------------------------------------------

// `truth`: a sample's ground-truth mask, `{ bitmap, name }`.
async function useBitmap(bitmap, truth = null) {
  showInputError('');
  crop.set(bitmap);
  state.truth = truth;
}

async function useFile(file) {
  try {
    await useBitmap(await decodeFile(file));
    document.querySelectorAll('input[name=sample]').forEach((r) => { r.checked = false; });
  } catch (e) {
    showInputError(e.message);
  }
}

async function useSample(radio) {
  const res = await fetch(radio.value);
  const bitmap = await createImageBitmap(await res.blob());
  let truth = null;
  if (radio.dataset.mask) {
    truth = { bitmap: await createImageBitmap(await (await fetch(radio.dataset.mask)).blob()), name: radio.dataset.mask };
  }
  await useBitmap(bitmap, truth);
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
  else showInputError('The drop held no file.');
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
  await useBitmap(await grabFrame($('video')));
  state.stopCamera?.();
  $('video').hidden = true;
  $('snap').hidden = true;
});

// ---- settings -----------------------------------------------------------------------------

// The controls a preset sets, from the core's own settings.
function applyPreset(name) {
  const p = state.presets[name];
  if (!p) return;
  // The core's settings are f32: show them at the precision they were written with.
  const short = (v) => Number(v.toPrecision(6));
  $('alpha').value = short(p.alpha);
  $('steps').value = p.max_steps;
  $('kappa').value = short(p.kappa);
  $('refine').value = p.refine;
  $('method').value = p.method.name;
}

$('preset').addEventListener('change', () => applyPreset($('preset').value));
// Editing a setting by hand leaves the preset.
for (const id of ['alpha', 'steps', 'kappa', 'refine', 'method']) $(id).addEventListener('input', () => { $('preset').value = 'custom'; });

// ---- running ------------------------------------------------------------------------------

function run() {
  if (!crop.bitmap) {
    showInputError('Pick an image first.');
    return;
  }
  state.steps = [];
  state.stepMs = [];
  state.laterMsSum = 0;
  state.all = [];
  state.started = performance.now();
  $('steps-log').replaceChildren();
  $('thumbnails').replaceChildren();
  $('summary').textContent = '';
  delete $('summary').dataset.residualAuroc;
  $('run-progress').value = 0;
  drawChart();
  const rowsText = $('rows').value.trim();
  const rows = rowsText ? rowsText.split(/[\s,]+/).map(Number) : null;
  if (rows && rows.some((r) => !Number.isInteger(r) || r < 0)) {
    setState('error', `Rows: “${rowsText}” is not a list of row numbers (e.g. 0,3,7).`);
    return;
  }
  const tuneSteps = Number($('tune-steps').value);
  setState('running', tuneSteps > 0 ? `Inverting, tuning the generator (${tuneSteps} steps) and searching…` : 'Inverting and searching…');
  const image = crop.pixels(CROP_SIZE);
  // A sample's ground-truth mask, cropped as the image is: the core scores the explanation
  // against it and returns the mask it used, which the results show.
  const truth = state.truth ? crop.pixels(CROP_SIZE, state.truth.bitmap) : null;
  const steps = Number($('steps').value);
  const preset = $('preset').value;
  const options = {
    // A named preset also brings what the controls do not show (the fast preset's ID
    // regulariser, where the zoo has an identity network); the controls override the rest.
    ...(preset in state.presets ? { preset } : {}),
    detector: $('detector').value,
    refine: Number($('refine').value),
    seed: Number($('seed').value),
    tuneSteps,
    mu: 1.0,
    method: $('method').value,
    beta: Number($('beta').value),
    levels: $('levels').value,
    alpha: Number($('alpha').value),
    steps,
    kappa: Number($('kappa').value),
    ...(rows ? { rows } : {}),
    allDetectors: state.detectors.length > 1,
    thumbnailEvery: Math.max(1, Math.ceil(steps / 8)),
  };
  state.pending = { options, mask: state.truth?.name ?? null };
  worker.postMessage({ type: 'run', image, options: { ...options, truth } }, truth ? [image.data, truth.data] : [image.data]);
}

// Cancel stops the worker outright (a search step cannot be interrupted) and starts a fresh
// one; the weights come back from the cache.
function cancel() {
  state.cancelled = true;
  load();
  setState('loading', 'Cancelled; reloading the models…');
}

function addThumbnail(rgba, step) {
  const size = Math.sqrt(rgba.length / 4);
  const c = document.createElement('canvas');
  c.width = size;
  c.height = size;
  c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
  c.title = `step ${step}`;
  c.setAttribute('role', 'img');
  c.setAttribute('aria-label', `Counterfactual at step ${step}`);
  $('thumbnails').append(c);
}

function drawChart() {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#3c4043';
  ctx.beginPath();
  ctx.moveTo(0, h / 2);
  ctx.lineTo(w, h / 2);
  ctx.stroke();
  const n = Math.max(Number($('steps').value), state.steps.length, 2);
  const line = (values, color, width) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    values.forEach((p, i) => {
      const x = (i / (n - 1)) * (w - 8) + 4;
      const y = (1 - p) * (h - 8) + 4;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  };
  const victim = $('detector').value;
  const legend = state.detectors.map((d, k) => {
    const color = COLORS[k % COLORS.length];
    if (d === victim) line(state.steps, color, 3);
    else if (state.all.length) line(state.all.map((row) => row[k]), color, 1.5);
    const item = document.createElement('span');
    item.className = 'key';
    item.style.borderColor = color;
    item.textContent = d === victim ? `${d} (victim)` : d;
    return item;
  });
  $('legend').replaceChildren(...legend);
}

// ---- results ------------------------------------------------------------------------------

function draw(id, rgba, size) {
  const canvas = $(id);
  canvas.width = size;
  canvas.height = size;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
}

// An image with a heat map over it at the page's opacity.
function drawOverlay(id, base, heat, size) {
  draw(id, base, size);
  const ctx = $(id).getContext('2d');
  const layer = new OffscreenCanvas(size, size);
  layer.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(heat), size, size), 0, 0);
  ctx.globalAlpha = Number($('opacity').value);
  ctx.drawImage(layer, 0, 0);
  ctx.globalAlpha = 1;
}

function drawCams() {
  const r = state.result;
  if (!r) return;
  drawOverlay('cam-input', r.input, r.camHeatInput, r.size);
  drawOverlay('cam-before', r.reconstruction, r.camHeatReconstruction, r.size);
  drawOverlay('cam-after', r.counterfactual, r.camHeatCounterfactual, r.size);
}

// The residual at the slider's gain is drawn by the core, in the worker.
function drawResidual() {
  const r = state.result;
  if (!r) return;
  worker.postMessage({ type: 'residual', before: r.reconstruction, after: r.counterfactual, size: r.size, gain: r.residualGain * Number($('gain').value) });
}

function drawCompare() {
  const r = state.result;
  if (!r) return;
  draw('compare-before', r.reconstruction, r.size);
  draw('compare-after', r.counterfactual, r.size);
  $('compare-after').style.clipPath = `inset(0 0 0 ${$('compare-slider').value}%)`;
}

function fillTable(id, rows) {
  $(id).tBodies[0].replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    cells.forEach((c, i) => {
      const el = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) el.scope = 'row';
      el.textContent = c;
      tr.append(el);
    });
    return tr;
  }));
  $(id).hidden = false;
}

/** Mean time of the steps after the first (which includes the inversion), kept as a running
 * sum so a long run does not re-add every step; null before the second step. */
function meanStepMs() {
  const n = state.stepMs.length - 1;
  return n > 0 ? state.laterMsSum / n : null;
}

function showResult(r) {
  $('empty').hidden = true;
  draw('input', r.input, r.size);
  draw('reconstruction', r.reconstruction, r.size);
  draw('counterfactual', r.counterfactual, r.size);
  draw('residual', r.residualMagnitude, r.size);
  draw('inversion-error', r.inversionError, r.size);
  drawCams();
  drawCompare();
  if ($('gain').value !== '1' || $('residual-kind').value !== 'magnitude') drawResidual();
  $('truth-figure').hidden = !r.truthMask;
  if (r.truthMask) draw('truth', r.truthMask, r.size);
  const mean = meanStepMs() ?? state.stepMs[0] ?? 0;
  $('summary').textContent = `${r.detector}: P(fake) ${r.pFakeBefore.toFixed(4)} → ${r.pFakeAfter.toFixed(4)} in ${r.steps} steps — ${r.success ? 'the detector now calls it real' : 'goal not reached'}. First step ${(state.stepMs[0] ?? 0).toFixed(0)} ms (includes inversion${r.search?.pivotal_tuning?.steps > 0 ? ` and ${r.search.pivotal_tuning.steps} steps of pivotal tuning` : ''}), then ${mean.toFixed(0)} ms per step on ${state.backend}.`;
  const num = (v, d) => (v == null ? 'n/a' : v.toFixed(d));
  $('summary').textContent += ` Quality vs reconstruction: PSNR ${r.psnr.toFixed(1)} dB, TV ${r.tvReconstruction.toFixed(2)} → ${r.tvCounterfactual.toFixed(2)}, ESNLE ${num(r.esnleReconstruction, 2)} → ${num(r.esnleCounterfactual, 2)}.`;
  if (r.localisation) {
    const { change_auroc: residual, cam_auroc: cam } = r.localisation;
    $('summary').textContent += ` Against the ground-truth mask (AUROC, 0.5 is chance): residual ${num(residual, 3)}, Grad-CAM drop ${num(cam, 3)}.`;
    if (residual != null) $('summary').dataset.residualAuroc = residual;
  }
  $('summary').dataset.pFakeBefore = r.pFakeBefore;
  $('summary').dataset.pFakeAfter = r.pFakeAfter;
  fillTable('scores', r.report.scores.map((s) => [s.detector === r.detector ? `${s.detector} (victim)` : s.detector, s.input.toFixed(4), s.reconstruction.toFixed(4), s.counterfactual.toFixed(4)]));
  const q = r.report.quality;
  fillTable('quality', [
    ['PSNR (dB)', num(q.psnr_db, 2)],
    ['SSIM', num(q.ssim, 4)],
    ['LPIPS', num(q.lpips, 4)],
    ['ID (ArcFace cosine)', num(q.id_similarity, 3)],
    ['TV, Artifact-Eraser (reconstruction → counterfactual)', `${num(q.tv_reference, 2)} → ${num(q.tv_changed, 2)}`],
    ['TV, torchmetrics L1', `${num(q.tv_l1_reference, 1)} → ${num(q.tv_l1_changed, 1)}`],
    ['ESNLE × 255', `${num(q.esnle_reference, 3)} → ${num(q.esnle_changed, 3)}`],
    ['Inversion PSNR (input vs reconstruction, dB)', num(r.report.inversion_psnr_db, 2)],
  ]);
  for (const id of ['download-zip', 'download-json', 'download-png']) $(id).disabled = false;
}

for (const id of ['gain', 'residual-kind']) $(id).addEventListener('input', drawResidual);
$('opacity').addEventListener('input', drawCams);
$('compare-slider').addEventListener('input', drawCompare);

// ---- downloads ----------------------------------------------------------------------------

async function png(id) {
  const blob = await new Promise((resolve) => $(id).toBlob(resolve, 'image/png'));
  return new Uint8Array(await blob.arrayBuffer());
}

function report() {
  const truth = state.result.localisation ? { mask: state.truthName, localisation: state.result.localisation } : null;
  return JSON.stringify({ options: state.options, backend: state.backend, stepMs: state.stepMs, search: state.result.search, truth, result: state.result.report }, null, 2);
}

function save(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

$('download-png').addEventListener('click', async () => save(new Blob([await png('counterfactual')], { type: 'image/png' }), 'counterfactual.png'));
$('download-json').addEventListener('click', () => save(new Blob([report()], { type: 'application/json' }), 'report.json'));
$('download-zip').addEventListener('click', async () => {
  const ids = ['input', 'reconstruction', 'counterfactual', 'residual', 'inversion-error', 'cam-input', 'cam-before', 'cam-after'];
  if (!$('truth-figure').hidden) ids.push('truth');
  const files = [];
  for (const id of ids) files.push({ name: `${id}.png`, bytes: await png(id) });
  files.push({ name: 'report.json', bytes: new TextEncoder().encode(report()) });
  save(zip(files), 'unforge-result.zip');
});

// ---- models -------------------------------------------------------------------------------

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

function folder(url) {
  return url.endsWith('/') ? url : `${url}/`;
}

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

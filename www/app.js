// The page: picks an input, hands it to the worker, draws what comes back.
const $ = (id) => document.getElementById(id);
const worker = new Worker('worker.js', { type: 'module' });
const state = { steps: [], stepMs: [], backend: null, presets: {} };

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

function setState(s, message) {
  document.body.dataset.state = s;
  if (message !== undefined) $('status').textContent = message;
  $('run').disabled = s !== 'ready' && s !== 'done' && s !== 'error';
}

function showBanner(text) {
  $('banner').textContent = text;
  $('banner').hidden = !text;
}

function load() {
  setState('loading', 'Loading models…');
  worker.postMessage({ type: 'load', backend: $('backend-choice').value });
}

async function readSample(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return { data: data.buffer, width, height };
}

function draw(id, rgba, size) {
  const canvas = $(id);
  canvas.width = size;
  canvas.height = size;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
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
  ctx.strokeStyle = '#f28b50';
  ctx.lineWidth = 2;
  ctx.beginPath();
  state.steps.forEach((p, i) => {
    const x = (i / (n - 1)) * (w - 8) + 4;
    const y = (1 - p) * (h - 8) + 4;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

async function run() {
  state.steps = [];
  state.stepMs = [];
  $('steps-log').replaceChildren();
  $('summary').textContent = '';
  drawChart();
  const sample = document.querySelector('input[name=sample]:checked').value;
  setState('running', 'Inverting and searching…');
  const image = await readSample(sample);
  const options = {
    detector: $('detector').value,
    refine: Number($('refine').value),
    seed: Number($('seed').value),
    mu: 1.0,
    method: $('method').value,
    beta: Number($('beta').value),
    levels: $('levels').value,
    alpha: Number($('alpha').value),
    steps: Number($('steps').value),
    kappa: Number($('kappa').value),
  };
  worker.postMessage({ type: 'run', image, options }, [image.data]);
}

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'loaded': {
      state.backend = data.backend;
      const name = data.backend === 'webgpu' ? 'WebGPU' : 'CPU (WebAssembly)';
      $('backend').textContent = `Backend: ${name} · zoo ${data.zoo} · loaded in ${(data.loadMs / 1000).toFixed(1)} s`;
      $('backend').dataset.backend = data.backend;
      showBanner(data.fallbackReason ? `Running on the CPU: ${data.fallbackReason}.` : '');
      state.presets = data.presets ?? {};
      $('detector').replaceChildren(...data.detectors.map((d) => new Option(d, d)));
      applyPreset($('preset').value);
      setState('ready', 'Ready. Pick an image and press Explain.');
      break;
    }
    case 'step': {
      state.steps.push(data.pFake);
      state.stepMs.push(data.ms);
      const li = document.createElement('li');
      li.textContent = `P(fake) ${data.pFake.toFixed(4)} · ${data.ms.toFixed(0)} ms`;
      $('steps-log').append(li);
      $('status').textContent = `Step ${data.step + 1}: P(fake) ${data.pFake.toFixed(4)} (${data.ms.toFixed(0)} ms)`;
      drawChart();
      break;
    }
    case 'done': {
      const r = data.result;
      draw('input', r.input, r.size);
      draw('reconstruction', r.reconstruction, r.size);
      draw('counterfactual', r.counterfactual, r.size);
      draw('residual', r.residualMagnitude, r.size);
      draw('inversion-error', r.inversionError, r.size);
      draw('cam-input', r.camInput, r.size);
      draw('cam-before', r.camReconstruction, r.size);
      draw('cam-after', r.camCounterfactual, r.size);
      const later = state.stepMs.slice(1);
      const mean = later.length ? later.reduce((a, b) => a + b, 0) / later.length : state.stepMs[0] ?? 0;
      $('summary').textContent = `${r.detector}: P(fake) ${r.pFakeBefore.toFixed(4)} → ${r.pFakeAfter.toFixed(4)} in ${r.steps} steps — ${r.success ? 'the detector now calls it real' : 'goal not reached'}. First step ${(state.stepMs[0] ?? 0).toFixed(0)} ms (includes inversion), then ${mean.toFixed(0)} ms per step on ${state.backend}.`;
      const esnle = (v) => (v == null ? 'n/a' : v.toFixed(2));
      $('summary').textContent += ` Quality vs reconstruction: PSNR ${r.psnr.toFixed(1)} dB, TV ${r.tvReconstruction.toFixed(2)} → ${r.tvCounterfactual.toFixed(2)}, ESNLE ${esnle(r.esnleReconstruction)} → ${esnle(r.esnleCounterfactual)}.`;
      const rows = r.report.scores.map((s) => {
        const tr = document.createElement('tr');
        const name = document.createElement('th');
        name.scope = 'row';
        name.textContent = s.detector === r.detector ? `${s.detector} (victim)` : s.detector;
        tr.append(name, ...[s.input, s.reconstruction, s.counterfactual].map((p) => {
          const td = document.createElement('td');
          td.textContent = p.toFixed(4);
          return td;
        }));
        return tr;
      });
      $('scores').tBodies[0].replaceChildren(...rows);
      $('scores').hidden = false;
      $('summary').dataset.pFakeBefore = r.pFakeBefore;
      $('summary').dataset.pFakeAfter = r.pFakeAfter;
      setState('done', 'Done.');
      break;
    }
    case 'error':
      setState(data.during === 'load' ? 'failed' : 'error', `Error: ${data.message}`);
      break;
  }
};

$('run').addEventListener('click', run);
$('preset').addEventListener('change', () => applyPreset($('preset').value));
// Editing a setting by hand leaves the preset.
for (const id of ['alpha', 'steps', 'kappa', 'refine', 'method']) $(id).addEventListener('input', () => { $('preset').value = 'custom'; });
$('backend-choice').addEventListener('change', load);
// `?backend=webgpu|cpu|auto` picks the backend before the first load (talks, tests).
const wanted = new URLSearchParams(location.search).get('backend');
if (['auto', 'webgpu', 'cpu'].includes(wanted)) $('backend-choice').value = wanted;
load();

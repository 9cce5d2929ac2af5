// A run as it happens: the step log, the P(fake) chart of every detector, the thumbnails, and
// the time per search step (pivotal tuning and inversion are timed apart, never as a step).
import { $ } from './ui.js';

const COLORS = ['#f28b50', '#8ab4f8', '#81c995', '#fdd663', '#c58af9', '#ff8bcb'];
const run = { steps: [], stepMs: [], all: [], started: 0, searchStarted: null, reused: false };

export function startRun() {
  Object.assign(run, { steps: [], stepMs: [], all: [], started: performance.now(), searchStarted: null, reused: false });
  $('steps-log').replaceChildren();
  $('thumbnails').replaceChildren();
  $('run-progress').value = 0;
}

// Time from Explain to the first search step: the inversion and any pivotal tuning.
export function searchStarts() {
  run.searchStarted ??= performance.now();
}

// The worker reused the face's kept inversion: no inverting, no tuning this run.
export function markReused() {
  run.reused = true;
}

export function reused() {
  return run.reused;
}

export function preparationMs() {
  return (run.searchStarted ?? performance.now()) - run.started;
}

// Mean time of a search step, null before the first.
export function meanStepMs() {
  return run.stepMs.length ? run.stepMs.reduce((a, b) => a + b, 0) / run.stepMs.length : null;
}

export function addStep(data, detectors) {
  run.steps.push(data.pFake);
  run.stepMs.push(data.ms);
  if (data.pFakeAll) run.all.push(Array.from(data.pFakeAll));
  const li = document.createElement('li');
  li.textContent = `P(fake) ${data.pFake.toFixed(4)} · ${data.ms.toFixed(0)} ms`;
  $('steps-log').append(li);
  const max = Number($('steps').value);
  const eta = Math.max(0, (max - data.step - 1) * meanStepMs()) / 1000;
  $('run-progress').max = max;
  $('run-progress').value = data.step + 1;
  $('status').textContent = `Step ${data.step + 1} of at most ${max}: P(fake) ${data.pFake.toFixed(4)} · ${data.ms.toFixed(0)} ms/step · at most ${eta.toFixed(0)} s left`;
  if (data.thumbnail) addThumbnail(data.thumbnail, data.step);
  drawChart(detectors);
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

export function drawChart(detectors) {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#3c4043';
  ctx.beginPath();
  ctx.moveTo(0, h / 2);
  ctx.lineTo(w, h / 2);
  ctx.stroke();
  const n = Math.max(Number($('steps').value), run.steps.length, 2);
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
  const legend = detectors.map((d, k) => {
    const color = COLORS[k % COLORS.length];
    if (d === victim) line(run.steps, color, 3);
    else if (run.all.length) line(run.all.map((row) => row[k]), color, 1.5);
    const item = document.createElement('span');
    item.className = 'key';
    item.style.borderColor = color;
    item.textContent = d === victim ? `${d} (victim)` : d;
    return item;
  });
  $('legend').replaceChildren(...legend);
}

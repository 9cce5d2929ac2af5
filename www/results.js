// The results of one explanation: the pictures, the overlays at the page's opacity, the
// comparison slider, the summary and the tables. Every number comes from the core's report.
import { $, draw } from './ui.js';
import { meanStepMs, preparationMs, reused } from './progress.js';

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

export function drawCams(r) {
  if (!r) return;
  drawOverlay('cam-input', r.input, r.camHeatInput, r.size);
  drawOverlay('cam-before', r.reconstruction, r.camHeatReconstruction, r.size);
  drawOverlay('cam-after', r.counterfactual, r.camHeatCounterfactual, r.size);
}

export function drawCompare(r) {
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

const num = (v, d) => (v == null ? 'n/a' : v.toFixed(d));
// PSNR of two identical images is infinite, which JSON writes as null.
const db = (v, d) => (v == null ? '∞' : v.toFixed(d));

const called = (p) => (p >= 0.5 ? 'fake' : 'real');

// The victim's verdicts in order: on the image itself, on its reconstruction (what the search
// starts from), on the counterfactual. The image's own verdict leads: a face already called
// real has nothing to explain, and the page says so rather than explain the reconstruction as
// if it were the image.
export function verdict(report) {
  const r = report.result;
  const v = r.scores.find((s) => s.detector === r.detector);
  const p = (x) => x.toFixed(2);
  let text = `${r.detector} calls the input ${called(v.input)} (P(fake) ${p(v.input)}); its reconstruction ${called(v.reconstruction)} (${p(v.reconstruction)})`;
  if (r.first_success_step === 0) {
    text += '; the reconstruction already meets the goal, so the search had nothing to remove.';
  } else if (r.success) {
    text += `; the counterfactual ${called(v.counterfactual)} (${p(v.counterfactual)}) after ${r.steps} steps — the detector now calls it real.`;
  } else {
    text += `; after ${r.steps} steps the counterfactual is still called ${called(v.counterfactual)} (${p(v.counterfactual)}) — goal not reached.`;
  }
  if (v.input < 0.5 && v.reconstruction >= 0.5) {
    text += ' The input itself is called real: there is nothing to explain in it. What follows explains the reconstruction’s verdict (inversion made the face look generated), not the image’s.';
  }
  return { text, input: v.input, reconstruction: v.reconstruction, counterfactual: v.counterfactual };
}

function summary(report, backend) {
  const r = report.result;
  const tuning = report.search.pivotal_tuning?.steps;
  const pivot = report.search.pivotal_tuning?.pivot?.steps;
  const mean = meanStepMs() ?? 0;
  const q = r.quality;
  const steps = [pivot > 0 && `${pivot} pivot refinement steps`, tuning > 0 && `${tuning} steps of pivotal tuning`].filter(Boolean);
  const prepared = reused() ? 'the kept inversion of this face was reused' : `includes inversion${steps.map((s) => ` and ${s}`).join('')}`;
  let text = ` Preparation ${preparationMs().toFixed(0)} ms (${prepared}), then ${mean.toFixed(0)} ms per step on ${backend}.`;
  text += ` Quality vs reconstruction: PSNR ${db(q.psnr_db, 1)} dB, TV ${num(q.tv_reference, 2)} → ${num(q.tv_changed, 2)}, ESNLE ${num(q.esnle_reference, 2)} → ${num(q.esnle_changed, 2)}.`;
  if (report.truth) {
    const { change_auroc: residual, cam_auroc: cam } = report.truth.localisation;
    text += ` Against the ground-truth mask (AUROC, 0.5 is chance): residual ${num(residual, 3)}, Grad-CAM drop ${num(cam, 3)}.`;
  }
  return text;
}

// `redrawResidual`: asks the worker for the residual at the slider's gain.
// `caveat`: what the page warns of before the numbers (an image outside the zoo's domain).
export function showResult(r, backend, redrawResidual, caveat) {
  const report = r.report;
  $('empty').hidden = true;
  draw('input', r.input, r.size);
  draw('reconstruction', r.reconstruction, r.size);
  draw('counterfactual', r.counterfactual, r.size);
  draw('residual', r.residualMagnitude, r.size);
  draw('inversion-error', r.inversionError, r.size);
  drawCams(r);
  drawCompare(r);
  if ($('gain').value !== '1' || $('residual-kind').value !== 'magnitude') redrawResidual();
  $('truth-figure').hidden = !r.truthMask;
  if (r.truthMask) draw('truth', r.truthMask, r.size);
  const s = $('summary');
  const v = verdict(report);
  $('verdict').textContent = caveat ? `${caveat} ${v.text}` : v.text;
  $('verdict').hidden = false;
  $('verdict').dataset.inputCalled = called(v.input);
  $('verdict').dataset.caveat = caveat ? 'domain' : '';
  s.textContent = summary(report, backend).trim();
  delete s.dataset.residualAuroc;
  const residual = report.truth?.localisation.change_auroc;
  if (residual != null) s.dataset.residualAuroc = residual;
  s.dataset.pFakeBefore = report.result.p_fake_reconstruction;
  s.dataset.pFakeAfter = report.result.p_fake_counterfactual;
  const victim = report.result.detector;
  fillTable('scores', report.result.scores.map((d) => [d.detector === victim ? `${d.detector} (victim)` : d.detector, d.input.toFixed(4), d.reconstruction.toFixed(4), d.counterfactual.toFixed(4)]));
  const q = report.result.quality;
  fillTable('quality', [
    ['PSNR (dB)', db(q.psnr_db, 2)],
    ['SSIM', num(q.ssim, 4)],
    ['LPIPS', num(q.lpips, 4)],
    ['ID (ArcFace cosine)', num(q.id_similarity, 3)],
    ['TV, Artifact-Eraser (reconstruction → counterfactual)', `${num(q.tv_reference, 2)} → ${num(q.tv_changed, 2)}`],
    ['TV, torchmetrics L1', `${num(q.tv_l1_reference, 1)} → ${num(q.tv_l1_changed, 1)}`],
    ['ESNLE × 255', `${num(q.esnle_reference, 3)} → ${num(q.esnle_changed, 3)}`],
    ['Inversion PSNR (input vs reconstruction, dB)', db(report.result.inversion_psnr_db, 2)],
  ]);
  for (const id of ['download-zip', 'download-json', 'download-png']) $(id).disabled = false;
}

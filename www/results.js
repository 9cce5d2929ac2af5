// The results of one explanation: the pictures, the overlays at the page's opacity, the
// comparison slider, the summary and the tables. Every number comes from the core's report.
import { $, draw } from './ui.js';
import { meanStepMs, preparationMs } from './progress.js';

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

function summary(report, backend) {
  const r = report.result;
  const tuning = report.search.pivotal_tuning?.steps;
  const mean = meanStepMs() ?? 0;
  const q = r.quality;
  let text = `${r.detector}: P(fake) ${r.p_fake_reconstruction.toFixed(4)} → ${r.p_fake_counterfactual.toFixed(4)} in ${r.steps} steps — ${r.success ? 'the detector now calls it real' : 'goal not reached'}.`;
  text += ` Preparation ${preparationMs().toFixed(0)} ms (includes inversion${tuning > 0 ? ` and ${tuning} steps of pivotal tuning` : ''}), then ${mean.toFixed(0)} ms per step on ${backend}.`;
  text += ` Quality vs reconstruction: PSNR ${q.psnr_db.toFixed(1)} dB, TV ${q.tv_reference.toFixed(2)} → ${q.tv_changed.toFixed(2)}, ESNLE ${num(q.esnle_reference, 2)} → ${num(q.esnle_changed, 2)}.`;
  if (report.truth) {
    const { change_auroc: residual, cam_auroc: cam } = report.truth.localisation;
    text += ` Against the ground-truth mask (AUROC, 0.5 is chance): residual ${num(residual, 3)}, Grad-CAM drop ${num(cam, 3)}.`;
  }
  return text;
}

// `redrawResidual`: asks the worker for the residual at the slider's gain.
export function showResult(r, backend, redrawResidual) {
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
  s.textContent = summary(report, backend);
  delete s.dataset.residualAuroc;
  const residual = report.truth?.localisation.change_auroc;
  if (residual != null) s.dataset.residualAuroc = residual;
  s.dataset.pFakeBefore = report.result.p_fake_reconstruction;
  s.dataset.pFakeAfter = report.result.p_fake_counterfactual;
  const victim = report.result.detector;
  fillTable('scores', report.result.scores.map((d) => [d.detector === victim ? `${d.detector} (victim)` : d.detector, d.input.toFixed(4), d.reconstruction.toFixed(4), d.counterfactual.toFixed(4)]));
  const q = report.result.quality;
  fillTable('quality', [
    ['PSNR (dB)', num(q.psnr_db, 2)],
    ['SSIM', num(q.ssim, 4)],
    ['LPIPS', num(q.lpips, 4)],
    ['ID (ArcFace cosine)', num(q.id_similarity, 3)],
    ['TV, Artifact-Eraser (reconstruction → counterfactual)', `${num(q.tv_reference, 2)} → ${num(q.tv_changed, 2)}`],
    ['TV, torchmetrics L1', `${num(q.tv_l1_reference, 1)} → ${num(q.tv_l1_changed, 1)}`],
    ['ESNLE × 255', `${num(q.esnle_reference, 3)} → ${num(q.esnle_changed, 3)}`],
    ['Inversion PSNR (input vs reconstruction, dB)', num(report.result.inversion_psnr_db, 2)],
  ]);
  for (const id of ['download-zip', 'download-json', 'download-png']) $(id).disabled = false;
}

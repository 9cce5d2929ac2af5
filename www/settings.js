// The search settings on the page: presets from the core, and the options a run sends (the
// core's ExplainOptions, so the page never restates a default).
import { $ } from './ui.js';

// The controls a preset sets, from the core's own settings.
export function applyPreset(presets, name) {
  const p = presets[name];
  if (!p) return;
  // The core's settings are f32: show them at the precision they were written with.
  const short = (v) => Number(v.toPrecision(6));
  $('alpha').value = short(p.alpha);
  $('steps').value = p.max_steps;
  $('kappa').value = short(p.kappa);
  $('refine').value = p.refine;
  $('method').value = p.method.name;
}

// The search resolutions a zoo allows: full size, or a preview side. A new zoo on the CPU path
// with a generator above 256 px starts at a 256 px preview: a full-size step of a 1024 px
// generator took 3.8 to 4.0 GB of WebAssembly's 4 GB (two runs on the keyed full-size zoo).
export function showPreviewSizes({ imageSize, previewSizes, backend }, newZoo) {
  const select = $('preview');
  const kept = select.value;
  select.replaceChildren(new Option(`full size (${imageSize} px)`, ''), ...previewSizes.map((s) => new Option(`preview ${s} px`, String(s))));
  const lighter = backend === 'cpu' && imageSize > 256 && previewSizes.includes(256) ? '256' : '';
  select.value = newZoo ? lighter : ([...select.options].some((o) => o.value === kept) ? kept : lighter);
}

// Editing a setting by hand leaves the preset.
export function watchPreset(presets) {
  $('preset').addEventListener('change', () => applyPreset(presets(), $('preset').value));
  for (const id of ['alpha', 'steps', 'kappa', 'refine', 'method']) $(id).addEventListener('input', () => { $('preset').value = 'custom'; });
}

// The run's ExplainOptions from the controls; throws a message a person can act on.
export function readOptions({ presets, detectors }) {
  const rowsText = $('rows').value.trim();
  const rows = rowsText ? rowsText.split(/[\s,]+/).map(Number) : null;
  if (rows && rows.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new Error(`Rows: “${rowsText}” is not a list of row numbers (e.g. 0,3,7).`);
  }
  // An empty field is left out (the preset's or the core's default), not sent as 0.
  const number = (id) => ($(id).value.trim() === '' ? undefined : Number($(id).value));
  const steps = number('steps');
  const preset = $('preset').value;
  const search = {
    // A named preset also brings what the controls do not show (the fast preset's ID
    // regulariser, where the zoo has an identity network); the controls override the rest.
    ...(preset in presets ? { preset } : {}),
    refine: number('refine'),
    seed: number('seed'),
    tuneSteps: number('tune-steps'),
    method: $('method').value,
    beta: number('beta'),
    levels: $('levels').value,
    alpha: number('alpha'),
    steps,
    preview: number('preview'),
    kappa: number('kappa'),
    ...(rows ? { rows } : {}),
  };
  return {
    detector: $('detector').value,
    search,
    live: { allDetectors: detectors.length > 1, thumbnailEvery: Math.max(1, Math.ceil((steps ?? 200) / 8)) },
  };
}

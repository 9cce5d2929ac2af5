// The results as files: the counterfactual as PNG, the core's report as JSON (the same keys
// as the CLI's report.json), and every picture with the report and the W+ codes
// (latents.safetensors, as `unforge run` writes them) in one ZIP.
import { $ } from './ui.js';
import { zip } from './zip.js';

async function png(id) {
  const blob = await new Promise((resolve) => $(id).toBlob(resolve, 'image/png'));
  return new Uint8Array(await blob.arrayBuffer());
}

function save(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// `result()`: the result on screen (its report and its W+ codes).
export function wireDownloads(result) {
  const json = () => JSON.stringify(result().report, null, 2);
  $('download-png').addEventListener('click', async () => save(new Blob([await png('counterfactual')], { type: 'image/png' }), 'counterfactual.png'));
  $('download-json').addEventListener('click', () => save(new Blob([json()], { type: 'application/json' }), 'report.json'));
  $('download-zip').addEventListener('click', async () => {
    const ids = ['input', 'reconstruction', 'counterfactual', 'residual', 'inversion-error', 'cam-input', 'cam-before', 'cam-after'];
    if (!$('truth-figure').hidden) ids.push('truth');
    const files = [];
    for (const id of ids) files.push({ name: `${id}.png`, bytes: await png(id) });
    files.push({ name: 'report.json', bytes: new TextEncoder().encode(json()) });
    files.push({ name: 'latents.safetensors', bytes: result().latents });
    save(zip(files), 'unforge-result.zip');
  });
}

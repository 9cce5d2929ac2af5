// End to end in a real browser: the page, the worker, the wasm core, on WebGPU and on CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, withPage, waitState, canvasSpread, ARTIFACTS } from './harness.mjs';

const STEP_TIMEOUT = 600_000;
// The mechanics below run on the seeded zoo: its search always has work to do, and the default
// zoo's recommended pivotal tuning (200 steps) would take minutes on a software GPU adapter.
const SEEDED = 'models/tiny-seeded/';

async function runTenSteps(page) {
  await page.fill('#steps', '10');
  await page.fill('#alpha', '0.03');
  await page.fill('#kappa', '0');
  await page.click('#run');
  const state = await waitState(page, ['done', 'error'], STEP_TIMEOUT);
  assert.equal(state, 'done', await page.textContent('#status'));
  const before = Number(await page.getAttribute('#summary', 'data-p-fake-before'));
  const after = Number(await page.getAttribute('#summary', 'data-p-fake-after'));
  const logged = await page.$$eval('#steps-log li', (li) => li.length);
  return { before, after, logged };
}

test('WebGPU: the page loads clean, runs on WebGPU and moves P(fake) toward real', async () => {
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(`${base}?backend=webgpu&zoo=${SEEDED}`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    assert.equal(await page.getAttribute('#backend', 'data-backend'), 'webgpu');
    assert.match(await page.textContent('#backend'), /zoo tiny-seeded \(\/models\/tiny-seeded\/zoo\.json/);
    assert.equal(await page.isVisible('#banner'), false);
    const { before, after, logged } = await runTenSteps(page);
    assert.ok(logged >= 1 && logged <= 10, `${logged} steps logged`);
    assert.ok(after < before, `P(fake) ${before} → ${after}`);
    for (const id of ['input', 'reconstruction', 'counterfactual', 'residual', 'inversion-error', 'cam-input', 'cam-before', 'cam-after']) {
      assert.ok((await canvasSpread(page, id)) > 0.05, `${id} is blank`);
    }
    // Every detector of the zoo is scored; the victim is the one picked.
    const detectors = await page.$$eval('#detector option', (o) => o.map((x) => x.value));
    assert.deepEqual(detectors, ['xception', 'efficientnet', 'resnet']);
    const rows = await page.$$eval('#scores tbody tr', (tr) => tr.map((r) => r.textContent));
    assert.equal(rows.length, 3, rows.join(' / '));
    assert.match(rows[0], /^xception \(victim\)/);
    assert.match(await page.textContent('#summary'), /ms per step on webgpu/);
    assert.match(await page.textContent('#summary'), /PSNR \d+\.\d dB, TV /);
    await page.screenshot({ path: `${ARTIFACTS}/skeleton-webgpu.png`, fullPage: true });
  });
});

test('WebGPU and CPU agree on the first gradient and on the P(fake) trajectory', async () => {
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(base);
    await waitState(page, ['ready', 'failed'], 120_000);
    const out = await page.evaluate(async (zoo) => {
      const { default: init, Session } = await import('/pkg/unforge.js');
      await init();
      const manifest = await (await fetch(`/${zoo}zoo.json`)).text();
      const files = new Map();
      for (const n of JSON.parse(manifest).networks) files.set(n.file, new Uint8Array(await (await fetch(`/${zoo}${n.file}`)).arrayBuffer()));
      const img = new Image();
      img.src = '/samples/synth-fake-1.png';
      await img.decode();
      const c = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
      c.getContext('2d').drawImage(img, 0, 0);
      const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      const result = {};
      const sessions = { webgpu: await Session.create(manifest, files, 'webgpu'), cpu: await Session.create(manifest, files, 'cpu') };
      // Numbers that are not numbers are refused by name, not replaced by defaults.
      const refusal = (options) => sessions.cpu.explain(new Uint8Array(data.buffer), width, height, options, () => {}).then(() => 'accepted', (e) => String(e?.message ?? e));
      const refused = [
        await refusal({ search: { alpha: 'big' } }), await refusal({ search: { kappa: NaN } }), await refusal({ search: { method: 'pgd', beta: Infinity } }),
        await refusal({ search: { mu: 'x' } }), await refusal({ search: { tuneLr: '' } }),
        await refusal({ truth: { data: { length: -1 }, width: 64, height: 64 } }), await refusal({ truth: { data: new Uint8Array(16 * 16 * 4), width: 16, height: 16 } }),
        await refusal({ search: { alpah: 1 } }), await refusal({ search: { steps: 2.5 } }), await refusal({ search: { rows: [0, 2.5] } }),
      ];
      // One latent for both: the gradients are compared on identical inputs.
      const latent = await sessions.cpu.invert(new Uint8Array(data.buffer), width, height);
      for (const [backend, s] of Object.entries(sessions)) {
        const inverted = await s.invert(new Uint8Array(data.buffer), width, height);
        const grad = await s.gradientAt(latent, s.detectors[0]);
        const traj = [];
        await s.explain(new Uint8Array(data.buffer), width, height, { search: { alpha: 0.03, steps: 10, kappa: 0 } }, (st) => st.pFake !== undefined && traj.push(st.pFake));
        // Pivotal tuning trains a copy of the generator: the weights' backward on each backend.
        const still = { steps: 1, kappa: 0 };
        const plain = await s.explain(new Uint8Array(data.buffer), width, height, { search: still }, () => {});
        const tuned = await s.explain(new Uint8Array(data.buffer), width, height, { search: { ...still, tuneSteps: 20 } }, () => {});
        const psnr = { plain: plain.report.result.inversion_psnr_db, tuned: tuned.report.result.inversion_psnr_db, tuneSteps: tuned.report.search.pivotal_tuning.steps };
        result[backend] = { used: s.backend, grad: Array.from(grad), latent: Array.from(inverted), traj, psnr };
      }
      return { ...result, refused };
    }, SEEDED);
    assert.match(out.refused[0], /option `alpha` must be a finite number, got “big”/);
    assert.match(out.refused[1], /option `kappa` must be a finite number, got NaN/);
    assert.match(out.refused[2], /option `beta` must be a finite number, got Infinity/);
    assert.match(out.refused[3], /option `mu` must be a finite number, got “x”/);
    assert.match(out.refused[4], /option `tuneLr` must be a finite number, got “”/);
    assert.match(out.refused[5], /option `truth` must be \{ data, width, height \}/);
    assert.match(out.refused[6], /option `truth`: the mask is 16×16, the image 128×128/);
    // A misspelt option is refused by name, not ignored; counts are whole numbers.
    assert.match(out.refused[7], /option `search`: unknown field `alpah`/);
    assert.match(out.refused[8], /option `steps` must be a whole number from 0 to 4294967295, got 2\.5/);
    assert.match(out.refused[9], /option `rows`: 2\.5 is not a row number/);
    assert.equal(out.webgpu.used, 'webgpu');
    assert.equal(out.cpu.used, 'cpu');
    const g = out.webgpu.grad, c = out.cpu.grad;
    assert.equal(g.length, c.length);
    const scale = Math.max(...c.map(Math.abs));
    const maxDiff = Math.max(...g.map((v, i) => Math.abs(v - c[i])));
    const l2 = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    const relL2 = l2(g.map((v, i) => v - c[i])) / l2(c);
    console.log(`first-step gradient: max |Δ| ${maxDiff.toExponential(2)} over max |∇| ${scale.toExponential(2)}, relative L2 ${relL2.toExponential(2)}`);
    assert.ok(scale > 0 && maxDiff / scale <= 1e-4, `gradient relative difference ${maxDiff / scale}`);
    // The inversions themselves (the encoder on each backend) agree too.
    const lw = out.webgpu.latent, lc = out.cpu.latent;
    const invDiff = l2(lw.map((v, i) => v - lc[i])) / l2(lc);
    console.log(`inversion: relative L2 difference ${invDiff.toExponential(2)}`);
    assert.ok(invDiff <= 1e-4, `inversion relative difference ${invDiff}`);
    assert.equal(out.webgpu.traj.length, out.cpu.traj.length);
    out.cpu.traj.forEach((p, i) => assert.ok(Math.abs(p - out.webgpu.traj[i]) <= 1e-2, `step ${i}: ${out.webgpu.traj[i]} vs ${p}`));
    for (const backend of ['webgpu', 'cpu']) {
      const { plain, tuned, tuneSteps } = out[backend].psnr;
      console.log(`${backend}: inversion PSNR ${plain.toFixed(2)} dB, after 20 steps of pivotal tuning ${tuned.toFixed(2)} dB`);
      assert.equal(tuneSteps, 20);
      assert.ok(tuned > plain + 0.5, `${backend}: pivotal tuning ${plain} → ${tuned} dB`);
    }
    assert.ok(Math.abs(out.webgpu.psnr.tuned - out.cpu.psnr.tuned) < 0.1, `tuned PSNR webgpu ${out.webgpu.psnr.tuned} vs cpu ${out.cpu.psnr.tuned}`);
  });
});

test('"fastest available" skips a software WebGPU adapter and says why', async () => {
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(base);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    const fallback = await page.evaluate(async () => {
      const a = await navigator.gpu.requestAdapter();
      return a.info?.isFallbackAdapter ?? a.isFallbackAdapter;
    });
    assert.equal(await page.getAttribute('#backend', 'data-backend'), fallback ? 'cpu' : 'webgpu');
    if (fallback) assert.match(await page.textContent('#banner'), /software fallback adapter/);
  });
});

test('without WebGPU the same flow runs on the CPU and the page says so', async () => {
  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(`${base}?zoo=${SEEDED}`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    assert.equal(await page.getAttribute('#backend', 'data-backend'), 'cpu');
    assert.ok(await page.isVisible('#banner'));
    assert.match(await page.textContent('#banner'), /WebGPU is not available in this browser/);
    // Presets come from the core: the page opens on "fast"; "paper" is attack.sh.
    assert.equal(await page.inputValue('#preset'), 'fast');
    assert.equal(await page.inputValue('#method'), 'rprop');
    await page.selectOption('#preset', 'paper');
    assert.deepEqual(
      [await page.inputValue('#alpha'), await page.inputValue('#steps'), await page.inputValue('#method'), await page.inputValue('#refine')],
      ['0.0008', '1000', 'ifgsm', '0'],
    );
    // The second detector as victim: its row is marked.
    await page.selectOption('#detector', 'efficientnet');
    const { before, after } = await runTenSteps(page);
    assert.equal(await page.inputValue('#preset'), 'custom', 'editing α leaves the preset');
    assert.match(await page.textContent('#scores tbody tr:nth-child(2)'), /^efficientnet \(victim\)/);
    assert.ok(after < before, `P(fake) ${before} → ${after}`);
    assert.ok((await canvasSpread(page, 'counterfactual')) > 0.05, 'counterfactual is blank');
    await page.screenshot({ path: `${ARTIFACTS}/skeleton-cpu-fallback.png`, fullPage: true });
    // The other methods reach the core through the same options.
    for (const method of ['mifgsm', 'pgd', 'rprop']) {
      await page.selectOption('#method', method);
      const run = await runTenSteps(page);
      assert.ok(run.after < run.before, `${method}: P(fake) ${run.before} → ${run.after}`);
    }
  });
});

test('a zoo larger than the GPU allows is refused on WebGPU and runs on the CPU under "fastest available"', async () => {
  const { readFileSync } = await import('node:fs');
  const root = new URL('../../', import.meta.url).pathname;
  const manifest = JSON.parse(readFileSync(`${root}models/zoo.json`, 'utf8'));
  const big = structuredClone(manifest);
  // A feature map no adapter holds in one buffer (hundreds of GB).
  big.networks.find((n) => n.role === 'generator').config.channels[8] = 100000;
  const files = [{ name: 'zoo.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(big)) }];
  for (const n of manifest.networks) files.push({ name: n.file, mimeType: 'application/octet-stream', buffer: readFileSync(`${root}models/${n.file}`) });
  const { page, base, close } = await open({ webgpu: true });
  try {
    await page.goto(base + '?backend=webgpu');
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    await page.click('#custom-zoo summary');
    await page.setInputFiles('#zoo-files', files);
    await page.click('#zoo-load');
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'failed');
    assert.match(await page.textContent('#banner'), /GPU's maxStorageBufferBindingSize is \d+ MB, and the generator's largest feature map needs \d+ MB/);
    await page.selectOption('#backend-choice', 'auto');
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'failed', 'the oversized zoo still fails the core’s own checks');
    assert.doesNotMatch(await page.textContent('#banner'), /maxStorageBufferBindingSize/, 'auto falls back to the CPU instead of refusing');
  } finally {
    await close();
  }
});

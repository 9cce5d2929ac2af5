// The benchmark page: the search step `unforge bench` times, run in the browser, a row per run
// with its median step. On the CPU path only: the full-width networks on SwiftShader, the
// software WebGPU adapter here, take minutes a step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withPage } from './harness.mjs';

async function runBench(page, { backend, size, detector, steps }) {
  const rows = await page.$$eval('#bench-results tbody tr', (r) => r.length);
  await page.selectOption('#bench-backend', backend);
  await page.selectOption('#bench-size', String(size));
  await page.selectOption('#bench-detector', String(detector));
  await page.fill('#bench-steps', String(steps));
  await page.click('#bench-run');
  await page.waitForFunction((n) => document.querySelectorAll('#bench-results tbody tr').length > n || /^Error/.test(document.getElementById('bench-status').textContent), rows, { timeout: 300_000 });
  assert.equal(await page.textContent('#bench-status'), 'Done.');
  const row = await page.$eval('#bench-results tbody tr:last-child', (r) => ({ median: Number(r.dataset.medianMs), backend: r.dataset.backend, text: r.textContent }));
  console.log(`bench.html ${backend} ${size} px: median ${row.median} ms`);
  return row;
}

test('the benchmark page times the search step and names the adapter', async () => {
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(`${base}bench.html`);
    assert.match(await page.textContent('#bench-adapter'), /WebGPU adapter/);
    const cpu = await runBench(page, { backend: 'cpu', size: 64, detector: 64, steps: 3 });
    assert.equal(cpu.backend, 'cpu');
    assert.ok(cpu.median > 0 && cpu.median < 60_000, `${cpu.median} ms`);
    // A second run adds a second row.
    await runBench(page, { backend: 'cpu', size: 64, detector: 64, steps: 2 });
    assert.equal(await page.$$eval('#bench-results tbody tr', (r) => r.length), 2);
  });
});

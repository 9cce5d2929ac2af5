// Faces in the page: a photograph's crop snaps to its face's FFHQ square (found by BlazeFace in
// the worker), several faces give a choice, a picture without one says so and keeps the manual
// crop; the snapped crop is what gets explained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { withPage, waitState, ARTIFACTS, pngOf } from './harness.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
// dlib's FFHQ square of the astronaut (tests/fixtures/faces/dlib-astronaut.json), continuous
// coordinates: centre, side and angle.
const dlib = JSON.parse(readFileSync(`${ROOT}tests/fixtures/faces/dlib-astronaut.json`, 'utf8'));
const q = dlib.quad.map(([x, y]) => [x + 0.5, y + 0.5]);
const DLIB = {
  cx: q.reduce((s, p) => s + p[0], 0) / 4,
  cy: q.reduce((s, p) => s + p[1], 0) / 4,
  side: Math.hypot(q[3][0] - q[0][0], q[3][1] - q[0][1]),
  angle: Math.atan2(q[3][1] - q[0][1], q[3][0] - q[0][0]),
};

async function cropOf(page) {
  const d = await page.evaluate(() => ({ ...document.getElementById('crop').dataset }));
  return { cx: Number(d.cx), cy: Number(d.cy), side: Number(d.side), angle: Number(d.angle) };
}

// Forgets the last picture's answer, so the next wait is for the next picture's.
const forget = (page) => page.evaluate(() => { delete document.getElementById('face-status').dataset.faces; });

async function facesFound(page) {
  await page.waitForFunction(() => document.getElementById('face-status').dataset.faces !== undefined, null, { timeout: 120_000 });
  return page.evaluate(() => document.getElementById('face-status').dataset.faces);
}

// Two astronauts: the photograph, and beside it a half-size copy on grey.
function twoFaces() {
  const src = PNG.sync.read(readFileSync(`${ROOT}www/samples/astronaut.png`));
  const out = new PNG({ width: 800, height: 512 });
  out.data.fill(128);
  for (let y = 0; y < 512; y++) {
    for (let x = 0; x < 512; x++) {
      const i = (y * 512 + x) * 4;
      src.data.copy(out.data, (y * 800 + x) * 4, i, i + 4);
    }
  }
  for (let y = 0; y < 256; y++) {
    for (let x = 0; x < 256; x++) {
      for (let c = 0; c < 4; c++) {
        let v = 0;
        for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) v += src.data[((2 * y + dy) * 512 + 2 * x + dx) * 4 + c];
        out.data[((y + 200) * 800 + 530 + x) * 4 + c] = Math.round(v / 4);
      }
    }
  }
  return PNG.sync.write(out);
}

test('a photograph snaps to its face; several faces give a choice; none says so', async () => {
  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(base);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    // The gallery's photograph opens aligned, on dlib's square within a few pixels.
    await page.check('input[value="samples/astronaut.png"]', { force: true });
    assert.equal(await facesFound(page), '1');
    let crop = await cropOf(page);
    assert.ok(Math.hypot(crop.cx - DLIB.cx, crop.cy - DLIB.cy) < 8, `centre (${crop.cx}, ${crop.cy}) vs dlib (${DLIB.cx.toFixed(1)}, ${DLIB.cy.toFixed(1)})`);
    assert.ok(Math.abs(crop.side / DLIB.side - 1) < 0.08, `side ${crop.side} vs dlib ${DLIB.side.toFixed(1)}`);
    assert.ok(Math.abs(crop.angle - DLIB.angle) < 0.05, `angle ${crop.angle} vs dlib ${DLIB.angle.toFixed(3)}`);
    assert.match(await page.textContent('#face-status'), /One face found .* FFHQ alignment/);
    await page.screenshot({ path: `${ARTIFACTS}/faces-astronaut.png`, fullPage: true });
    // The user can still adjust: an arrow press moves the square along its own axes.
    await page.focus('#crop');
    await page.keyboard.press('ArrowRight');
    const moved = await cropOf(page);
    assert.ok(moved.cx > crop.cx + 5 && Math.abs(moved.angle - crop.angle) < 1e-6);
    // The snapped crop is what is explained.
    await page.fill('#tune-steps', '0');
    await page.fill('#steps', '1');
    await page.click('#run');
    assert.equal(await waitState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));

    // Two faces: the larger is taken, a click takes the other.
    await forget(page);
    await page.setInputFiles('#file', { name: 'two.png', mimeType: 'image/png', buffer: twoFaces() });
    assert.equal(await facesFound(page), '2');
    crop = await cropOf(page);
    assert.ok(crop.cx < 400, `the larger face is on the left, got ${crop.cx}`);
    const buttons = await page.$$eval('#faces button', (b) => b.map((x) => x.textContent));
    assert.deepEqual(buttons, ['Face 1', 'Face 2', 'Manual crop']);
    const other = (await page.$$('#faces button'))[(await page.$$eval('#faces button', (b) => b.findIndex((x) => x.getAttribute('aria-pressed') === 'false')))];
    await other.click();
    crop = await cropOf(page);
    assert.ok(crop.cx > 530 && crop.cx < 786 && crop.side < DLIB.side * 0.6, `the small face: ${JSON.stringify(crop)}`);
    await page.click('text=Manual crop');
    crop = await cropOf(page);
    assert.deepEqual([crop.cx, crop.cy, crop.side, crop.angle], [400, 256, 512, 0]);

    // No face: said so, the manual crop stays.
    await forget(page);
    await page.setInputFiles('#file', { name: 'sky.png', mimeType: 'image/png', buffer: await pngOf(300, 200, () => [90, 140, 200, 255]) });
    assert.equal(await facesFound(page), '0');
    assert.match(await page.textContent('#face-status'), /No face found: move and zoom the square by hand/);
    crop = await cropOf(page);
    assert.deepEqual([crop.cx, crop.cy, crop.side, crop.angle], [150, 100, 200, 0]);
    assert.equal(await page.isVisible('#faces'), false);
  });
});

test('on WebGPU the face is found where the CPU path finds it', async () => {
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(`${base}?backend=webgpu&zoo=models/tiny-seeded/`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready', await page.textContent('#status'));
    assert.equal(await page.getAttribute('#backend', 'data-backend'), 'webgpu');
    await page.check('input[value="samples/astronaut.png"]', { force: true });
    assert.equal(await facesFound(page), '1');
    const crop = await cropOf(page);
    assert.ok(Math.hypot(crop.cx - DLIB.cx, crop.cy - DLIB.cy) < 8 && Math.abs(crop.side / DLIB.side - 1) < 0.08, JSON.stringify(crop));
    assert.match(await page.textContent('#face-status'), /One face found/);
  });
});

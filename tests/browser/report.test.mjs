// One typed boundary: `unforge run` and the page's wasm Session, given the same image, zoo and
// options, return the same report (the same keys, the same numbers to float tolerance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { withPage } from './harness.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
// The CLI the Rust tests built (./build.sh test runs them first).
const CLI = join(process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/unforge-target'), 'debug/unforge');

// Every key of `a` and `b` alike, strings and booleans equal, numbers within `tol` (relative
// above 1); returns the first difference as `path: a vs b`, or null.
function difference(a, b, tol, path = '') {
  if (typeof a === 'number' && typeof b === 'number') {
    return Math.abs(a - b) <= tol * Math.max(1, Math.abs(a)) ? null : `${path}: ${a} vs ${b}`;
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    return a === b ? null : `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    if (!(k in a) || !(k in b)) return `${path}.${k}: only in ${k in a ? 'the CLI' : 'the page'}'s report`;
    const d = difference(a[k], b[k], tol, `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

test('the CLI and the page give the same report for the same image, zoo and options', async () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run the Rust tests (cargo test --tests) first`);
  const out = mkdtempSync(join(tmpdir(), 'unforge-report-'));
  const image = `${ROOT}www/samples/synth-fake-1.png`;
  const mask = `${ROOT}www/samples/synth-mask-1.png`;
  // κ 0.99: no early stop, so both run every step whatever their last bits.
  const search = { steps: 4, alpha: 0.03, kappa: 0.99, method: 'mifgsm', levels: 'S,M', tuneSteps: 2, seed: 3 };
  execFileSync(CLI, ['run', image, '--zoo', `${ROOT}models/tiny-seeded`, '--truth', mask, '--steps', '4', '--alpha', '0.03', '--kappa', '0.99',
    '--method', 'mifgsm', '--levels', 'S,M', '--tune-steps', '2', '--seed', '3', '--out', out], { stdio: 'pipe' });
  const cli = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));

  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(`${base}?zoo=models/tiny-seeded/`);
    const web = await page.evaluate(async (search) => {
      const { default: init, Session } = await import('/pkg/unforge.js');
      await init();
      const zoo = '/models/tiny-seeded/';
      const manifest = await (await fetch(`${zoo}zoo.json`)).text();
      const files = new Map();
      for (const n of JSON.parse(manifest).networks) files.set(n.file, new Uint8Array(await (await fetch(`${zoo}${n.file}`)).arrayBuffer()));
      const pixels = async (url) => {
        const bitmap = await createImageBitmap(await (await fetch(url)).blob(), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
        const c = new OffscreenCanvas(bitmap.width, bitmap.height);
        c.getContext('2d').drawImage(bitmap, 0, 0);
        return c.getContext('2d').getImageData(0, 0, c.width, c.height);
      };
      const img = await pixels('/samples/synth-fake-1.png');
      const m = await pixels('/samples/synth-mask-1.png');
      const session = await Session.create(manifest, files, 'cpu');
      const truth = { data: m.data, width: m.width, height: m.height, name: 'synth-mask-1.png' };
      const result = await session.explain(new Uint8Array(img.data.buffer), img.width, img.height, { search, truth, imageName: 'synth-fake-1.png' }, () => {});
      return result.report;
    }, search);
    // What only the front knows differs: the image's and the mask's names, the backend.
    assert.equal(cli.image, image);
    assert.equal(web.image, 'synth-fake-1.png');
    assert.equal(cli.truth.mask, mask);
    assert.equal(web.truth.mask, 'synth-mask-1.png');
    assert.deepEqual([cli.backend, web.backend], ['flex', 'cpu']);
    for (const r of [cli, web]) {
      delete r.image;
      delete r.backend;
      delete r.truth.mask;
    }
    assert.equal(cli.result.history.length, 4);
    assert.deepEqual(cli.rows, web.rows);
    assert.deepEqual(cli.options, web.options, 'the options as given');
    const diff = difference(cli, web, 1e-2);
    assert.equal(diff, null, `the reports differ at ${diff}`);
    const tight = difference(cli.result.scores, web.result.scores, 1e-4);
    console.log(`CLI vs page: every key alike; scores ${tight ? `differ beyond 1e-4 (${tight})` : 'agree to 1e-4'}`);
  });
});

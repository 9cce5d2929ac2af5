// Shared pieces of the browser tests: a server on a free port, Debian's Chromium driven by
// playwright-core, and a page that records console errors.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { startServer } from '../../tools/serve.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
mkdirSync(ARTIFACTS, { recursive: true });

const QUIET = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

export async function open({ webgpu, camera = false }) {
  const server = await startServer(0);
  const base = `http://127.0.0.1:${server.address().port}/`;
  const args = webgpu ? [...QUIET, '--enable-unsafe-webgpu'] : [...QUIET, '--disable-webgpu'];
  // Chromium's synthetic camera, granted without a prompt.
  if (camera) args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args });
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`); });
  const close = async () => { await browser.close(); server.close(); };
  return { page, base, errors, close };
}

/// Waits for the page's `data-state` to become one of `states`.
export async function waitState(page, states, timeout) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout, polling: 200 });
  return page.evaluate(() => document.body.dataset.state);
}

/// Fraction of distinct pixel values in a canvas: 0 for a blank one.
export function canvasSpread(page, id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size / (d.length / 4);
  }, id);
}

/// Runs `body` on a fresh page, then checks that the page logged no errors (except those
/// `ignore` matches: a test that provokes some names them), and closes it either way.
export async function withPage(options, body, { ignore } = {}) {
  const { page, base, errors, close } = await open(options);
  try {
    await body({ page, base, errors });
    assert.deepEqual(ignore ? errors.filter((e) => !ignore.test(e)) : errors, []);
  } finally {
    await close();
  }
}

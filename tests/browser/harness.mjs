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

const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  let c = 0xffffffff;
  for (const b of body) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/// A PNG of `w × h` from its filtered scanlines `raw` (each row: a filter byte, then the
/// pixels packed at `bitDepth` in `colorType`), with `before` chunks (PLTE, …) ahead of IDAT.
export async function pngFrom(w, h, colorType, bitDepth, raw, before = []) {
  const { deflateSync } = await import('node:zlib');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const extra = before.map(([type, data]) => chunk(type, data));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra, chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/// An RGBA PNG of `w × h` whose pixel (x, y) is `pixel(x, y)` → [r, g, b, a].
export async function pngOf(w, h, pixel) {
  const raw = Buffer.alloc(h * (1 + 4 * w));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) Buffer.from(pixel(x, y)).copy(raw, y * (1 + 4 * w) + 1 + 4 * x);
  }
  return pngFrom(w, h, 6, 8, raw);
}

/// The JS heap of the page's first dedicated worker, over the DevTools protocol (a worker has
/// no `performance.memory`): `start()` samples it every 100 ms, `stop()` returns the peaks in
/// bytes: `used` (JS objects) and `backing` (the ArrayBuffers behind typed arrays, outside the
/// JS heap proper; WebAssembly's memory is not among them).
export async function watchWorkerHeap(page) {
  const cdp = await page.context().newCDPSession(page);
  let worker = null;
  for (let i = 0; i < 100 && !worker; i++) {
    worker = (await cdp.send('Target.getTargets')).targetInfos.find((t) => t.type === 'worker');
    if (!worker) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(worker, 'the page has a worker');
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: worker.targetId, flatten: false });
  let id = 0;
  const pending = new Map();
  cdp.on('Target.receivedMessageFromTarget', ({ message }) => {
    const m = JSON.parse(message);
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  });
  const usage = () => new Promise((resolve) => {
    pending.set(++id, resolve);
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method: 'Runtime.getHeapUsage' }) }).catch(() => resolve(null));
  });
  const peak = { used: 0, backing: 0 };
  let timer = null;
  const sample = async () => {
    const u = await usage();
    if (u) {
      peak.used = Math.max(peak.used, u.usedSize);
      peak.backing = Math.max(peak.backing, u.backingStorageSize ?? 0);
    }
  };
  return {
    start() { peak.used = 0; peak.backing = 0; timer = setInterval(sample, 100); },
    async stop() { clearInterval(timer); await sample(); return { ...peak }; },
  };
}

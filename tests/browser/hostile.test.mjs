// Hostile input at scale: a thousand malformed and odd images through the page's input path
// and the core's worker, bad requests to the worker, and a hundred searches in one worker with
// its memory bounded. Seeded, so a failure names the same file every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { withPage, waitState, pngFrom } from './harness.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;

// mulberry32: the same thousand files on every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Valid PNGs of every colour type and bit depth the format allows, palettes included, at odd
// sizes (strips, single pixels).
async function oddPng(random, i) {
  const kinds = [[0, [1, 2, 4, 8, 16]], [2, [8, 16]], [3, [1, 2, 4, 8]], [4, [8, 16]], [6, [8, 16]]];
  const [colorType, depths] = kinds[i % kinds.length];
  const bitDepth = depths[Math.floor(random() * depths.length)];
  const sizes = [[1, 1], [1, 300], [300, 1], [37, 101], [64, 64], [3, 2]];
  const [w, h] = random() < 0.5 ? sizes[i % sizes.length] : [1 + Math.floor(random() * 90), 1 + Math.floor(random() * 90)];
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const rowBytes = Math.ceil((w * channels * bitDepth) / 8);
  const raw = Buffer.alloc(h * (1 + rowBytes));
  for (let y = 0; y < h; y++) for (let x = 0; x < rowBytes; x++) raw[y * (1 + rowBytes) + 1 + x] = Math.floor(random() * 256);
  const before = [];
  if (colorType === 3) {
    // A palette of every index the depth can name, or a short one (indices past it are an error).
    const entries = random() < 0.8 ? 1 << bitDepth : 1 + Math.floor(random() * 3);
    before.push(['PLTE', Buffer.from(Array.from({ length: entries * 3 }, () => Math.floor(random() * 256)))]);
  }
  return { name: `odd-${i}-ct${colorType}-${bitDepth}bit-${w}x${h}.png`, bytes: await pngFrom(w, h, colorType, bitDepth, raw, before) };
}

async function thousandFiles() {
  const random = rng(19);
  const good = readFileSync(`${ROOT}www/samples/photo-face.png`);
  const pick = (n) => Math.floor(random() * n);
  const files = [];
  for (let i = 0; i < 300; i++) {
    const at = 1 + pick(good.length - 1);
    files.push({ name: `truncated-${i}-at-${at}.png`, bytes: good.subarray(0, at) });
  }
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(good);
    const at = i < 200 ? pick(64) : pick(b.length);
    b[at] ^= 1 << pick(8);
    files.push({ name: `flipped-${i}-byte-${at}.png`, bytes: b });
  }
  for (let i = 0; i < 100; i++) {
    // A header that declares a huge image (or a zero side) before any data.
    const b = Buffer.from(good);
    const huge = [0, 1 << 16, 1 << 24, 0x7fffffff, 0xffffffff][i % 5];
    b.writeUInt32BE(i % 2 ? huge : 1 + pick(1 << 20), 16);
    b.writeUInt32BE(i % 2 ? 1 + pick(1 << 20) : huge, 20);
    files.push({ name: `declared-${i}.png`, bytes: b });
  }
  for (let i = 0; i < 150; i++) files.push(await oddPng(random, i));
  const headers = [
    Buffer.from('just some text, not an image\n'), Buffer.from('{"json": true}'), Buffer.from('PK\x03\x04zip'), Buffer.from('%PDF-1.7\n'),
    Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), Buffer.from('\x7fELF\x02\x01\x01'), Buffer.from('GIF89a'), Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    Buffer.from('BM'), Buffer.from('RIFF\x00\x00\x00\x00WEBPVP8 '),
  ];
  for (let i = 0; i < 150; i++) {
    // Other formats' magic numbers with random bodies, under image names.
    const tail = Buffer.from(Array.from({ length: pick(200) }, () => pick(256)));
    const ext = ['png', 'jpg', 'gif', 'webp', 'bmp'][i % 5];
    files.push({ name: `renamed-${i}.${ext}`, bytes: Buffer.concat([headers[i % headers.length], tail]) });
  }
  assert.equal(files.length, 1000);
  return files;
}

// A worker of the page's own, on the seeded zoo: `ask(message)` resolves with its reply.
async function startWorker(page) {
  await page.evaluate(async () => {
    const worker = new Worker('./worker.js', { type: 'module' });
    window.ask = (message) => new Promise((resolve) => {
      const onReply = ({ data }) => {
        if (['progress', 'stage', 'tuning', 'step'].includes(data.type)) return;
        worker.removeEventListener('message', onReply);
        resolve(data);
      };
      worker.addEventListener('message', onReply);
      worker.postMessage(message);
    });
    const loaded = await window.ask({ type: 'load', backend: 'cpu', base: 'models/tiny-seeded/', files: null });
    if (loaded.type !== 'loaded') throw new Error(loaded.message);
  });
}

test('a thousand malformed and odd images: each refused by name or decoded, no worker dies, then an explanation runs', async () => {
  const files = await thousandFiles();
  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(`${base}?backend=cpu&zoo=models/tiny-seeded/`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready');
    await startWorker(page);
    const outcomes = { refused: 0, decoded: 0, explained: 0, coreRefused: 0 };
    const failures = [];
    for (let at = 0; at < files.length; at += 50) {
      const batch = files.slice(at, at + 50).map((f) => ({ name: f.name, data: f.bytes.toString('base64') }));
      const results = await page.evaluate(async (batch) => {
        const { decodeFile } = await import('./input.js');
        const out = [];
        for (const { name, data } of batch) {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          let bitmap;
          try {
            // The page's own path from a chosen file: the checks before decoding, then the decode.
            bitmap = await decodeFile(new File([bytes], name));
          } catch (e) {
            out.push({ name, refused: e.message });
            continue;
          }
          // A decoded image goes to the core as the page sends it: RGBA of its centred square.
          const side = Math.min(bitmap.width, bitmap.height);
          const canvas = new OffscreenCanvas(side, side);
          canvas.getContext('2d').drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, side, side);
          bitmap.close();
          const pixels = canvas.getContext('2d').getImageData(0, 0, side, side).data;
          const reply = await window.ask({ type: 'run', image: { data: pixels.buffer, width: side, height: side }, options: { search: { steps: 1 } } });
          out.push({ name, reply: reply.type, message: reply.message });
        }
        return out;
      }, batch);
      for (const r of results) {
        if (r.refused !== undefined) {
          outcomes.refused++;
          if (!r.refused.includes(r.name)) failures.push(`${r.name}: the message does not name the file: ${r.refused}`);
        } else if (r.reply === 'done') {
          outcomes.decoded++;
          outcomes.explained++;
        } else if (r.reply === 'error') {
          outcomes.decoded++;
          outcomes.coreRefused++;
          if (!r.message) failures.push(`${r.name}: the core refused it without a message`);
        } else {
          failures.push(`${r.name}: the worker answered ${r.reply}`);
        }
      }
    }
    console.log(`1000 images: ${outcomes.refused} refused by name, ${outcomes.decoded} decoded (${outcomes.explained} explained, ${outcomes.coreRefused} refused by the core)`);
    assert.deepEqual(failures, []);
    assert.equal(outcomes.refused + outcomes.decoded, 1000);
    assert.ok(outcomes.refused >= 500 && outcomes.explained >= 100, JSON.stringify(outcomes));
    // The worker is alive and the page still explains.
    const alive = await page.evaluate(() => window.ask({ type: 'memory' }));
    assert.equal(alive.type, 'memory');
    await page.check('input[value="samples/synth-fake-1.png"]');
    await page.fill('#steps', '2');
    await page.click('#run');
    assert.equal(await waitState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  });
});

test('bad requests to the core are errors that say what is wrong, and a hundred searches stay within a memory bound', async () => {
  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(`${base}?backend=cpu&zoo=models/tiny-seeded/`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready');
    await startWorker(page);
    const replies = await page.evaluate(async () => {
      const rgba = (w, h) => new Uint8ClampedArray(w * h * 4).fill(128).buffer;
      const bad = [
        { image: { data: rgba(8, 8), width: 9, height: 8 }, options: {} },
        { image: { data: rgba(1, 1), width: 0, height: 0 }, options: {} },
        { image: { data: new ArrayBuffer(0), width: 100000, height: 100000 }, options: {} },
        { image: { data: 'pixels', width: 8, height: 8 }, options: {} },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { search: { steps: 'many' } } },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { search: { alpah: 1 } } },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { crop: { x: 30, y: 30, side: 30 } } },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { detector: 'nope' } },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { truth: { data: rgba(4, 4), width: 4, height: 4 } } },
        { image: { data: rgba(32, 32), width: 32, height: 32 }, options: { search: { steps: Number.NaN } } },
      ];
      const out = [];
      for (const request of bad) out.push(await window.ask({ type: 'run', ...request }));
      return out;
    });
    for (const [i, r] of replies.entries()) {
      assert.equal(r.type, 'error', `bad request ${i} was answered ${r.type}`);
      assert.ok(r.message.length > 10, `bad request ${i}: ${r.message}`);
    }
    // A hundred short searches in one worker: its memory settles.
    const memory = await page.evaluate(async () => {
      const side = 48;
      const pixels = new Uint8ClampedArray(side * side * 4);
      for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 251;
      const seen = [];
      for (let n = 0; n < 100; n++) {
        const reply = await window.ask({ type: 'run', image: { data: pixels.slice().buffer, width: side, height: side }, options: { search: { steps: 2, seed: n } } });
        if (reply.type !== 'done') throw new Error(`search ${n}: ${reply.message}`);
        if (n === 9 || n === 99) seen.push(await window.ask({ type: 'memory' }));
      }
      return seen;
    });
    const [tenth, last] = memory;
    const mb = (b) => (b / 1048576).toFixed(1);
    const heap = last.jsHeapBytes === null ? 'the worker\'s JS heap is not reported by this browser' : `JS heap ${mb(tenth.jsHeapBytes)} → ${mb(last.jsHeapBytes)} MB`;
    console.log(`wasm memory after 10 searches ${mb(tenth.wasmBytes)} MB, after 100 ${mb(last.wasmBytes)} MB; ${heap}`);
    // The bound: the core's memory grows by at most 8 MB over the last 90 searches, and stays
    // under 256 MB in all (the seeded zoo's networks and one search need about a tenth of it).
    assert.ok(last.wasmBytes - tenth.wasmBytes <= 8 << 20, `wasm memory grew ${mb(last.wasmBytes - tenth.wasmBytes)} MB`);
    assert.ok(last.wasmBytes <= 256 << 20, `wasm memory ${mb(last.wasmBytes)} MB`);
    if (last.jsHeapBytes !== null) assert.ok(last.jsHeapBytes - tenth.jsHeapBytes <= 32 << 20, `JS heap grew ${mb(last.jsHeapBytes - tenth.jsHeapBytes)} MB`);
  });
});

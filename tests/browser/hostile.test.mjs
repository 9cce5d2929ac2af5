// Hostile input at scale: a thousand malformed and odd images through the page's input path
// and the core's worker, bad requests to the worker, a hundred searches in one worker with its
// memory bounded, a hundred bad weight files and manifests through the page's loader, and a
// WebGPU device lost mid-search. Seeded, so a failure names the same file every time.
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
        if (n === 9 || n === 99) {
          // The worker's memory, and the page's JS heap that received every result.
          const worker = await window.ask({ type: 'memory' });
          seen.push({ ...worker, pageHeapBytes: performance.memory?.usedJSHeapSize ?? null });
        }
      }
      return seen;
    });
    const [tenth, last] = memory;
    const mb = (b) => (b / 1048576).toFixed(1);
    const heap = last.jsHeapBytes === null ? 'the worker\'s JS heap is not reported by this browser' : `worker JS heap ${mb(tenth.jsHeapBytes)} → ${mb(last.jsHeapBytes)} MB`;
    console.log(`wasm memory after 10 searches ${mb(tenth.wasmBytes)} MB, after 100 ${mb(last.wasmBytes)} MB; ${heap}; the page's JS heap ${mb(tenth.pageHeapBytes)} → ${mb(last.pageHeapBytes)} MB`);
    // The bound: the core's memory grows by at most 8 MB over the last 90 searches, and stays
    // under 256 MB in all (the seeded zoo's networks and one search need about a tenth of it).
    assert.ok(last.wasmBytes - tenth.wasmBytes <= 8 << 20, `wasm memory grew ${mb(last.wasmBytes - tenth.wasmBytes)} MB`);
    assert.ok(last.wasmBytes <= 256 << 20, `wasm memory ${mb(last.wasmBytes)} MB`);
    if (last.jsHeapBytes !== null) assert.ok(last.jsHeapBytes - tenth.jsHeapBytes <= 32 << 20, `worker JS heap grew ${mb(last.jsHeapBytes - tenth.jsHeapBytes)} MB`);
    // The page received a hundred results (pictures and reports) and kept none: its heap grows
    // by at most 32 MB.
    assert.ok(typeof last.pageHeapBytes === 'number', 'Chromium reports the page\'s JS heap');
    assert.ok(last.pageHeapBytes - tenth.pageHeapBytes <= 32 << 20, `the page's JS heap grew ${mb(last.pageHeapBytes - tenth.pageHeapBytes)} MB`);
  });
});

// A safetensors file's header as JSON, and its data.
function splitSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data: bytes.subarray(8 + n) };
}

function joinSafetensors(headerText, data) {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(headerText)));
  return Buffer.concat([len, Buffer.from(headerText), data]);
}

function hundredBadZoos() {
  const dir = `${ROOT}models/tiny-seeded/`;
  const manifestText = readFileSync(`${dir}zoo.json`, 'utf8');
  const manifest = JSON.parse(manifestText);
  const good = readFileSync(`${dir}xception.safetensors`);
  const { header, data } = splitSafetensors(good);
  const keys = Object.keys(header).filter((k) => k !== '__metadata__');
  const random = rng(23);
  const pick = (n) => Math.floor(random() * n);
  const bad = [];
  const weights = (what, bytes) => bad.push({ what, name: 'xception.safetensors', bytes, says: 'xception.safetensors' });
  const edited = (what, edit) => {
    const h = structuredClone(header);
    edit(h);
    weights(what, joinSafetensors(JSON.stringify(h), data));
  };
  for (let i = 0; i < 20; i++) weights(`truncated (#${i})`, good.subarray(0, 1 + pick(good.length - 1)));
  const headerEnd = 8 + Number(good.readBigUInt64LE(0));
  for (let i = 0; i < 20; i++) {
    const b = Buffer.from(good);
    b[8 + pick(headerEnd - 8)] ^= 1 << pick(8);
    weights(`header bit flipped (#${i})`, b);
  }
  for (let i = 0; i < 10; i++) {
    // NaN, +∞ and −∞ in one value of a tensor (the file stores f16).
    const key = keys[pick(keys.length)];
    const [start, end] = header[key].data_offsets;
    const b = Buffer.from(good);
    const at = headerEnd + start + 2 * pick((end - start) / 2);
    b.writeUInt16LE([0x7e00, 0x7c00, 0xfc00][i % 3], at);
    weights(`non-finite value in ${key}`, b);
  }
  for (const [i, dtype] of ['I64', 'U8', 'BOOL', 'F64', 'F8_E4M3', 'I32', 'F32', 'Q4', '', 'BF17'].entries()) {
    edited(`${keys[i]} as ${dtype}`, (h) => { h[keys[i]].dtype = dtype; });
  }
  for (let i = 0; i < 10; i++) {
    edited(`shape off by one (#${i})`, (h) => { const s = h[keys[(i * 5) % keys.length]].shape; s[i % s.length] += 1; });
  }
  for (let i = 0; i < 5; i++) {
    const text = JSON.stringify(header);
    const entry = `"${keys[i]}":${JSON.stringify(header[keys[i]])}`;
    const twin = `"${keys[i]}":${JSON.stringify(header[keys[i + 1]])}`;
    weights(`${keys[i]} twice`, joinSafetensors(text.replace(entry, `${entry},${twin}`), data));
  }
  for (const length of [2n ** 64n - 1n, 2n ** 40n, BigInt(good.length), 0n, 7n]) {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(length, 0);
    weights(`header length ${length}`, b);
  }
  const first = keys[0];
  const layouts = [
    (h) => { h[first].shape = 'x'; }, (h) => { h[first].data_offsets = [...h[first].data_offsets].reverse(); },
    (h) => { h[first].data_offsets = [0, data.length + 4]; }, (h) => { h[first].shape = [0]; }, (h) => { h[first].shape = [-1]; },
    (h) => { h[first].data_offsets = h[keys[1]].data_offsets; }, (h) => { h[first].shape = [2 ** 53, 4]; },
    (h) => { delete h[first].dtype; }, (h) => { h[first].dtype = 7; }, (h) => { h[first].data_offsets = '0-4'; },
  ];
  layouts.forEach((edit, i) => edited(`layout edit ${i}`, edit));
  // Manifests: files outside the folder, broken JSON, networks that do not fit.
  const manifests = [
    ...['../x.safetensors', '/etc/passwd', 'a/../../b.safetensors', '..', ''].map((f) => [`file ${JSON.stringify(f)}`, manifestText.replace('"xception.safetensors"', JSON.stringify(f))]),
    ['truncated', manifestText.slice(0, manifestText.length / 2)],
    ['no networks', manifestText.replace('"networks"', '"nets"')],
    ['unknown architecture', manifestText.replace('"architecture": "xception"', '"architecture": "vit"')],
    ['rows', JSON.stringify({ ...manifest, n_latent: 80 })],
    ['negative size', manifestText.replace(/"input_size": \d+/, '"input_size": -32')],
  ];
  for (const [what, text] of manifests) {
    assert.notEqual(text, manifestText, `manifest edit ${what} changed nothing`);
    bad.push({ what: `manifest: ${what}`, name: 'zoo.json', bytes: Buffer.from(text), says: null });
  }
  assert.equal(bad.length, 100);
  return bad;
}

test('a hundred bad weight files and manifests through the page\'s loader: each an error naming the file, then the zoo loads', async () => {
  const dir = `${ROOT}models/tiny-seeded/`;
  const manifest = JSON.parse(readFileSync(`${dir}zoo.json`, 'utf8'));
  const names = ['zoo.json', ...manifest.networks.map((n) => n.file)];
  const files = Object.fromEntries(names.map((n) => [n, readFileSync(`${dir}${n}`).toString('base64')]));
  await withPage({ webgpu: false }, async ({ page, base }) => {
    await page.goto(`${base}?backend=cpu&zoo=models/tiny-seeded/`);
    assert.equal(await waitState(page, ['ready', 'failed'], 120_000), 'ready');
    await startWorker(page);
    const failures = [];
    for (const { what, name, bytes, says } of hundredBadZoos()) {
      const reply = await page.evaluate(async ({ files, name, bytes }) => {
        const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const chosen = Object.entries({ ...files, [name]: bytes }).map(([n, b]) => new File([decode(b)], n));
        return window.ask({ type: 'load', backend: 'cpu', base: null, files: chosen });
      }, { files, name, bytes: bytes.toString('base64') });
      if (reply.type !== 'error') failures.push(`${what}: ${reply.type}`);
      else if (says && !reply.message.includes(says)) failures.push(`${what}: the message does not name ${says}: ${reply.message}`);
    }
    assert.deepEqual(failures, []);
    // The same worker then loads the zoo as it is, and explains with it.
    const loaded = await page.evaluate(async (files) => {
      const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const chosen = Object.entries(files).map(([n, b]) => new File([decode(b)], n));
      const reply = await window.ask({ type: 'load', backend: 'cpu', base: null, files: chosen });
      const side = 32;
      const run = await window.ask({ type: 'run', image: { data: new Uint8ClampedArray(side * side * 4).fill(90).buffer, width: side, height: side }, options: { search: { steps: 1 } } });
      return [reply.type, run.type];
    }, files);
    assert.deepEqual(loaded, ['loaded', 'done']);
  });
});

test('a WebGPU device lost in the middle of a search: the page says so and finishes on the CPU with the same image and settings', async () => {
  // SwiftShader's WebGPU; the test hook (`test-lose-gpu-after`) destroys the device after the
  // search's second step, which raises a real device-lost.
  await withPage({ webgpu: true }, async ({ page, base }) => {
    await page.goto(`${base}?backend=webgpu&zoo=models/tiny-seeded/&test-lose-gpu-after=2`);
    assert.equal(await waitState(page, ['ready', 'failed'], 180_000), 'ready', await page.textContent('#status'));
    assert.equal(await page.getAttribute('#backend', 'data-backend'), 'webgpu');
    await page.check('input[value="samples/synth-fake-2.png"]');
    await page.fill('#steps', '5');
    await page.fill('#alpha', '0.02');
    await page.fill('#kappa', '0');
    await page.click('#run');
    await page.waitForFunction(() => /device was lost/.test(document.getElementById('banner').textContent), null, { timeout: 300_000 });
    assert.equal(await waitState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
    assert.match(await page.textContent('#banner'), /WebGPU device was lost .*continuing on the CPU with the same image and settings/);
    assert.equal(await page.getAttribute('#backend', 'data-backend'), 'cpu');
    // The same image and settings, explained to the end on the CPU.
    assert.equal(await page.isChecked('input[value="samples/synth-fake-2.png"]'), true);
    assert.deepEqual([await page.inputValue('#steps'), await page.inputValue('#alpha')], ['5', '0.02']);
    const [d] = await Promise.all([page.waitForEvent('download'), page.click('#download-json')]);
    const report = JSON.parse(readFileSync(await d.path(), 'utf8'));
    assert.equal(report.backend, 'cpu');
    assert.equal(report.image, 'samples/synth-fake-2.png');
    assert.equal(report.search.max_steps, 5);
  }, { ignore: /WebGPU|GPU|device/i });
});

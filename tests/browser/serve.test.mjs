// The demo's static server: request targets that are not plain paths are answered, never
// crash it, and never reach outside www/ and models/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, SECURITY_HEADERS } from '../../tools/serve.mjs';

function headers(port, path) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => { res.resume(); ok({ status: res.statusCode, headers: res.headers }); });
    req.on('error', fail);
    req.end();
  });
}

const status = (port, path) => headers(port, path).then((r) => r.status);

test('the server answers odd request targets with the right status', async () => {
  const server = await startServer(0);
  const { port } = server.address();
  try {
    for (const [path, want] of [['/', 200], ['//', 200], ['/models/zoo.json', 200], ['/%zz', 400], ['/no-such-file.png', 404], ['/../../etc/passwd', 404], ['/models/../../Cargo.toml', 404]]) {
      assert.equal(await status(port, path), want, path);
    }
  } finally {
    server.close();
  }
});

test('every response, errors included, carries the locked-down headers', async () => {
  const server = await startServer(0);
  const { port } = server.address();
  try {
    const paths = ['/', '/index.html', '/app.js', '/worker.js', '/style.css', '/pkg/unforge_bg.wasm', '/real-checkpoints.html', '/samples/synth-fake-1.png', '/models/zoo.json', '/models/tiny-seeded/zoo.json', '/favicon.svg', '/no-such-file.png', '/%zz'];
    for (const path of paths) {
      const { status, headers: got } = await headers(port, path);
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(got[name.toLowerCase()], value, `${path} (${status}): ${name}`);
    }
    const csp = SECURITY_HEADERS['Content-Security-Policy'];
    for (const directive of ["frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "default-src 'self'"]) assert.ok(csp.includes(directive), directive);
    assert.match(SECURITY_HEADERS['Permissions-Policy'], /^camera=\(self\), /);
    assert.equal(SECURITY_HEADERS['Referrer-Policy'], 'no-referrer');
    assert.equal(SECURITY_HEADERS['X-Content-Type-Options'], 'nosniff');
  } finally {
    server.close();
  }
});

test('the core goes out precompressed to a browser that takes it, whole to one that does not', async () => {
  const { statSync } = await import('node:fs');
  const root = new URL('../../www/pkg/', import.meta.url).pathname;
  const raw = statSync(`${root}unforge_bg.wasm`).size;
  const server = await startServer(0);
  const { port } = server.address();
  const get = (encoding) => new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path: '/pkg/unforge_bg.wasm', headers: encoding ? { 'accept-encoding': encoding } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; });
      res.on('end', () => ok({ headers: res.headers, bytes }));
    });
    req.on('error', fail);
    req.end();
  });
  try {
    const br = await get('gzip, deflate, br');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.bytes, statSync(`${root}unforge_bg.wasm.br`).size);
    assert.equal(Number(br.headers['x-decoded-length']), raw);
    assert.equal(br.headers['content-security-policy'], SECURITY_HEADERS['Content-Security-Policy']);
    const gz = await get('gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.bytes, statSync(`${root}unforge_bg.wasm.gz`).size);
    const plain = await get(null);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.bytes, raw);
    console.log(`core: ${(raw / 1048576).toFixed(1)} MB raw, ${(br.bytes / 1048576).toFixed(2)} MB brotli, ${(gz.bytes / 1048576).toFixed(2)} MB gzip on the wire`);
  } finally {
    server.close();
  }
});

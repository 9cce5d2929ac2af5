// The demo's static server: request targets that are not plain paths are answered, never
// crash it, and never reach outside www/ and models/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, SECURITY_HEADERS } from '../../tools/serve.mjs';

function status(port, path) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => { res.resume(); ok(res.statusCode); });
    req.on('error', fail);
    req.end();
  });
}

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

function headers(port, path) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => { res.resume(); ok({ status: res.statusCode, headers: res.headers }); });
    req.on('error', fail);
    req.end();
  });
}

test('every response, errors included, carries the locked-down headers', async () => {
  const server = await startServer(0);
  const { port } = server.address();
  try {
    const paths = ['/', '/index.html', '/app.js', '/worker.js', '/style.css', '/samples/synth-fake-1.png', '/models/zoo.json', '/models/tiny-seeded/zoo.json', '/favicon.svg', '/no-such-file.png', '/%zz'];
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

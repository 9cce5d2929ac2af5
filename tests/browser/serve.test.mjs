// The demo's static server: request targets that are not plain paths are answered, never
// crash it, and never reach outside www/ and models/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer } from '../../tools/serve.mjs';

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

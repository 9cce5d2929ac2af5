// Serves www/ at / and models/ at /models/ with correct MIME types and a strict CSP.
// Usage: node tools/serve.mjs [port] [host]
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream', '.ts': 'text/plain',
};
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; style-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
// Sent with every response, errors included: no framing, no referrer, no MIME sniffing, and of
// the powerful features only the camera (the webcam input), for this origin alone.
export const SECURITY_HEADERS = {
  'Content-Security-Policy': CSP,
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Permissions-Policy': 'camera=(self), microphone=(), geolocation=(), usb=(), payment=(), display-capture=(), midi=(), accelerometer=(), gyroscope=(), magnetometer=()',
};

// The precompressed copy of `file` the client accepts (brotli first), when one exists.
async function precompressed(file, accept) {
  for (const [name, ext] of [['br', 'br'], ['gzip', 'gz']]) {
    if (!new RegExp(`\\b${name}\\b`).test(accept)) continue;
    try {
      // A copy older than the file (a build that skipped compress.mjs) is not served.
      const [copy, original] = await Promise.all([stat(`${file}.${ext}`), stat(file)]);
      if (copy.mtimeMs >= original.mtimeMs) return { name, ext };
    } catch {
      // Not precompressed in this encoding.
    }
  }
  return null;
}

export function startServer(port = 8080, host = '127.0.0.1') {
  const server = createServer(async (req, res) => {
    try {
      // The request target is a path: prefixing the origin keeps `//x` a path, not a host.
      const path = decodeURIComponent(new URL(`http://x${req.url}`).pathname);
      const [base, rel] = path.startsWith('/models/') ? [join(root, 'models'), path.slice('/models/'.length)] : [join(root, 'www'), path.slice(1) || 'index.html'];
      const file = normalize(join(base, rel));
      if (file !== base && !file.startsWith(base + sep)) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
      const info = await stat(file);
      const target = info.isDirectory() ? join(file, 'index.html') : file;
      const headers = { ...SECURITY_HEADERS, 'Content-Type': TYPES[extname(target)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' };
      // A file precompressed at build time (the core: tools/compress.mjs) goes out compressed
      // to a client that takes it; the decoded size rides along for the page's progress bar.
      const encoding = await precompressed(target, req.headers['accept-encoding'] ?? '');
      if (encoding) {
        const body = await readFile(`${target}.${encoding.ext}`);
        res.writeHead(200, { ...headers, 'Content-Encoding': encoding.name, 'Content-Length': body.length, 'X-Decoded-Length': (await stat(target)).size, Vary: 'Accept-Encoding' });
        res.end(body);
        return;
      }
      const body = await readFile(target);
      res.writeHead(200, { ...headers, 'Content-Length': body.length, Vary: 'Accept-Encoding' });
      res.end(body);
    } catch (e) {
      // A malformed target (bad %-escape, unparsable URL) is the client's error.
      const [status, text] = e.code === 'ENOENT' ? [404, 'not found'] : e instanceof URIError || e instanceof TypeError ? [400, 'bad request'] : [500, 'server error'];
      res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain' });
      res.end(text);
    }
  });
  return new Promise((ok) => server.listen(port, host, () => ok(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8080);
  const host = process.argv[3] ?? '127.0.0.1';
  await startServer(port, host);
  console.log(`Unforge: http://${host}:${port}/`);
}

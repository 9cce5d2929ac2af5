// Precompresses the WebAssembly core (and its JS glue) beside it as .br and .gz, so the demo
// server sends a few MB instead of thirty. Usage: node tools/compress.mjs FILE...
import { readFileSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

for (const file of process.argv.slice(2)) {
  const raw = readFileSync(file);
  const started = performance.now();
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
  const gz = gzipSync(raw, { level: 9 });
  writeFileSync(`${file}.br`, br);
  writeFileSync(`${file}.gz`, gz);
  const mb = (n) => `${(n / 1048576).toFixed(2)} MB`;
  console.log(`${file}: ${mb(raw.length)} raw, ${mb(br.length)} brotli, ${mb(gz.length)} gzip (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

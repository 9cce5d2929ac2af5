// The benchmark page: runs the worker, shows each run as a row. Nothing leaves the browser.
const $ = (id) => document.getElementById(id);

async function describeAdapter() {
  if (!('gpu' in navigator)) return 'WebGPU: not available in this browser.';
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return 'WebGPU: no adapter.';
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' · ');
  return `WebGPU adapter: ${name || 'unnamed'}${(info.isFallbackAdapter ?? adapter.isFallbackAdapter) ? ' (a software fallback)' : ''}.`;
}

function run() {
  const settings = {
    backend: $('bench-backend').value,
    size: Number($('bench-size').value),
    channelMultiplier: Number($('bench-cm').value),
    detectorSize: Math.min(Number($('bench-detector').value), Number($('bench-size').value)),
    steps: Math.max(2, Math.min(50, Number($('bench-steps').value) || 5)),
  };
  const worker = new Worker('bench-worker.js', { type: 'module' });
  const times = [];
  let ready = null;
  document.body.dataset.state = 'running';
  $('bench-run').disabled = true;
  $('bench-status').textContent = 'Building the networks…';
  const finish = (message) => {
    worker.terminate();
    $('bench-run').disabled = false;
    $('bench-status').textContent = message;
    document.body.dataset.state = 'ready';
  };
  worker.onmessage = ({ data }) => {
    if (data.type === 'ready') {
      ready = data;
      $('bench-status').textContent = `Running on ${data.backend}${data.fallbackReason ? ` (${data.fallbackReason})` : ''}…`;
    } else if (data.type === 'step') {
      times.push(data.ms);
      $('bench-status').textContent = `Step ${data.index + 1} of ${settings.steps}: ${data.ms.toFixed(0)} ms`;
    } else if (data.type === 'done') {
      const rest = times.slice(1).sort((a, b) => a - b);
      const median = rest[Math.floor(rest.length / 2)];
      const row = document.createElement('tr');
      row.dataset.medianMs = median.toFixed(1);
      row.dataset.backend = ready.backend;
      const cells = [ready.backend, `${settings.size} px · cm ${settings.channelMultiplier}`, `${settings.detectorSize} px`,
        `${ready.buildMs.toFixed(0)} ms`, `${times[0].toFixed(0)} ms`, `${median.toFixed(0)} ms`, String(times.length)];
      row.replaceChildren(...cells.map((c) => Object.assign(document.createElement('td'), { textContent: c })));
      $('bench-results').tBodies[0].append(row);
      finish('Done.');
    } else {
      finish(`Error: ${data.message}`);
    }
  };
  worker.onerror = (e) => finish(`The worker stopped: ${e.message || 'no reason given'} (out of memory at this size?)`);
  worker.postMessage(settings);
}

$('bench-run').addEventListener('click', run);
describeAdapter().then((text) => { $('bench-adapter').textContent = text; });

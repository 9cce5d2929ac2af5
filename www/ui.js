// Small pieces of the page every module uses: element lookup, the page's state and messages,
// and drawing RGBA pixels on a canvas.
export const $ = (id) => document.getElementById(id);

// Whether there is an image to explain (the page says, once it has its crop).
let hasImage = () => false;
export function whenImage(test) {
  hasImage = test;
}

// The page's state (`data-state` on <body>, which the tests and the styles read) and status line.
export function setState(s, message) {
  document.body.dataset.state = s;
  if (message !== undefined) $('status').textContent = message;
  refreshRun();
}

// Explain is enabled when the models are idle and there is an image.
export function refreshRun() {
  const s = document.body.dataset.state;
  $('run').disabled = !['ready', 'done', 'error', 'cancelled'].includes(s) || !hasImage();
  $('cancel').disabled = s !== 'running';
}

export function showInputWarning(text) {
  $('input-warning').textContent = text;
  $('input-warning').hidden = !text;
}

export function showBanner(text) {
  $('banner').textContent = text;
  $('banner').hidden = !text;
}

export function showInputError(text) {
  $('input-error').textContent = text;
  $('input-error').hidden = !text;
}

export function formatBytes(n) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} kB`;
}

// RGBA bytes of a `size` × `size` image onto the canvas `id`.
export function draw(id, rgba, size) {
  const canvas = $(id);
  canvas.width = size;
  canvas.height = size;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
}

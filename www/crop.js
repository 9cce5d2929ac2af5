// A square crop with zoom: the canvas always shows the square that will be used; drag or the
// arrow keys move it, the slider or the wheel zooms.

// What transparent pixels become: mid grey, the networks' zero.
const BACKGROUND = 'rgb(128, 128, 128)';

export class SquareCrop {
  constructor(canvas, zoomInput) {
    this.canvas = canvas;
    this.zoomInput = zoomInput;
    this.bitmap = null;
    this.cx = 0;
    this.cy = 0;
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag || !this.bitmap) return;
      const k = this.side() / canvas.getBoundingClientRect().width;
      this.move(drag.cx - (e.clientX - drag.x) * k, drag.cy - (e.clientY - drag.y) * k);
    });
    canvas.addEventListener('pointerup', () => { drag = null; });
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomInput.value = Math.min(Number(this.zoomInput.max), Math.max(1, Number(this.zoomInput.value) * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
      this.draw();
    }, { passive: false });
    canvas.addEventListener('keydown', (e) => {
      const step = this.side() / 20;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!moves[e.key]) return;
      e.preventDefault();
      this.move(this.cx + moves[e.key][0], this.cy + moves[e.key][1]);
    });
    zoomInput.addEventListener('input', () => this.draw());
  }

  // The side of the selected square, in image pixels.
  side() {
    return Math.min(this.bitmap.width, this.bitmap.height) / Number(this.zoomInput.value);
  }

  set(bitmap) {
    this.bitmap = bitmap;
    this.zoomInput.value = 1;
    this.move(bitmap.width / 2, bitmap.height / 2);
  }

  // No image: the canvas is blank and nothing can be explained.
  clear() {
    this.bitmap = null;
    this.canvas.getContext('2d').clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // How many times the selected square is enlarged to `size` pixels (1 or less: no upscaling).
  upscale(size) {
    return size / this.side();
  }

  move(cx, cy) {
    this.cx = cx;
    this.cy = cy;
    this.draw();
  }

  // Keeps the square inside the image (after a move or a zoom), then shows it.
  draw() {
    if (!this.bitmap) return;
    const s = this.side();
    this.cx = Math.min(this.bitmap.width - s / 2, Math.max(s / 2, this.cx));
    this.cy = Math.min(this.bitmap.height - s / 2, Math.max(s / 2, this.cy));
    const ctx = this.canvas.getContext('2d');
    // Transparent pixels show the neutral grey the networks will see, not what was drawn before.
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.bitmap, this.cx - s / 2, this.cy - s / 2, s, s, 0, 0, this.canvas.width, this.canvas.height);
  }

  // The selected square as RGBA at `size` × `size`; of `source` (a picture in register with
  // the image, such as a sample's ground-truth mask) instead of the image when given.
  pixels(size, source = this.bitmap) {
    const [kx, ky] = [source.width / this.bitmap.width, source.height / this.bitmap.height];
    const s = this.side();
    const off = new OffscreenCanvas(size, size);
    const ctx = off.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    // An image with transparency is composited on neutral grey (a mask, fully opaque, is not
    // changed by it).
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, size, size);
    ctx.drawImage(source, (this.cx - s / 2) * kx, (this.cy - s / 2) * ky, s * kx, s * ky, 0, 0, size, size);
    const { data } = ctx.getImageData(0, 0, size, size);
    return { data: data.buffer, width: size, height: size };
  }
}

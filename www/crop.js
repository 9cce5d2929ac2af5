// A square crop with zoom and, once it has snapped to a found face, that face's rotation: the
// canvas always shows the square that will be used; drag or the arrow keys move it, the slider
// or the wheel zooms. Snapped to a face (`snap`), the square is the face's FFHQ square and may
// reach past the picture's edges (neutral grey there); a manual crop stays inside the picture.

// What transparent pixels, and pixels outside the picture, become: mid grey, the networks' zero.
export const BACKGROUND = 'rgb(128, 128, 128)';

export class SquareCrop {
  constructor(canvas, zoomInput) {
    this.canvas = canvas;
    this.zoomInput = zoomInput;
    this.bitmap = null;
    this.cx = 0;
    this.cy = 0;
    // Radians, clockwise on the picture; 0 unless snapped to a face.
    this.angle = 0;
    this.snapped = false;
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag || !this.bitmap) return;
      const k = this.side() / canvas.getBoundingClientRect().width;
      const [dx, dy] = this.toPicture(-(e.clientX - drag.x) * k, -(e.clientY - drag.y) * k);
      this.move(drag.cx + dx, drag.cy + dy);
    });
    canvas.addEventListener('pointerup', () => { drag = null; });
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomInput.value = Math.min(Number(this.zoomInput.max), Math.max(Number(this.zoomInput.min), Number(this.zoomInput.value) * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
      this.draw();
    }, { passive: false });
    canvas.addEventListener('keydown', (e) => {
      const step = this.side() / 20;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!moves[e.key]) return;
      e.preventDefault();
      const [dx, dy] = this.toPicture(...moves[e.key]);
      this.move(this.cx + dx, this.cy + dy);
    });
    zoomInput.addEventListener('input', () => this.draw());
  }

  // A step in the square's own axes, in the picture's.
  toPicture(dx, dy) {
    const [s, c] = [Math.sin(this.angle), Math.cos(this.angle)];
    return [c * dx - s * dy, s * dx + c * dy];
  }

  // The side of the selected square, in image pixels.
  side() {
    return Math.min(this.bitmap.width, this.bitmap.height) / Number(this.zoomInput.value);
  }

  set(bitmap) {
    this.bitmap = bitmap;
    this.angle = 0;
    this.snapped = false;
    this.zoomInput.min = 1;
    this.zoomInput.value = 1;
    this.move(bitmap.width / 2, bitmap.height / 2);
  }

  // The square of a found face (`{ centre, side, angle }`, in the picture's pixels). A face
  // larger than the picture's short side zooms out below 1.
  snap({ centre, side, angle }) {
    const short = Math.min(this.bitmap.width, this.bitmap.height);
    this.snapped = true;
    this.angle = angle;
    this.zoomInput.min = Math.min(1, short / side).toFixed(3);
    this.zoomInput.value = short / side;
    this.move(centre[0], centre[1]);
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

  // Draws the selected square of `source` (in register with the image) onto a `size` canvas.
  render(ctx, size, source) {
    const [kx, ky] = [source.width / this.bitmap.width, source.height / this.bitmap.height];
    const s = this.side();
    ctx.save();
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, size, size);
    ctx.imageSmoothingQuality = 'high';
    // Picture → canvas: about the square's centre, unrotated, scaled to the canvas.
    ctx.translate(size / 2, size / 2);
    ctx.scale(size / s, size / s);
    ctx.rotate(-this.angle);
    ctx.translate(-this.cx, -this.cy);
    ctx.scale(1 / kx, 1 / ky);
    ctx.drawImage(source, 0, 0);
    ctx.restore();
  }

  // Keeps the square inside the image (a manual crop) or its centre inside (a snapped one),
  // then shows it.
  draw() {
    if (!this.bitmap) return;
    const s = this.side();
    const [w, h] = [this.bitmap.width, this.bitmap.height];
    const margin = this.snapped ? 0 : s / 2;
    this.cx = Math.min(w - margin, Math.max(margin, this.cx));
    this.cy = Math.min(h - margin, Math.max(margin, this.cy));
    this.render(this.canvas.getContext('2d'), this.canvas.width, this.bitmap);
    // Where the square is, in the picture's pixels, for anyone reading the page.
    Object.assign(this.canvas.dataset, { cx: this.cx.toFixed(1), cy: this.cy.toFixed(1), side: s.toFixed(1), angle: this.angle.toFixed(4) });
  }

  // The selected square as RGBA at `size` × `size`; of `source` (a picture in register with
  // the image, such as a sample's ground-truth mask) instead of the image when given.
  pixels(size, source = this.bitmap) {
    const off = new OffscreenCanvas(size, size);
    const ctx = off.getContext('2d');
    this.render(ctx, size, source);
    const { data } = ctx.getImageData(0, 0, size, size);
    return { data: data.buffer, width: size, height: size };
  }
}

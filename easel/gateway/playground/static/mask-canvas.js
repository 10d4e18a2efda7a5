// The Edit tab's canvas: the image, the smart mask drawn over it, and the clicked points
// and box. A click adds a point (shift-click, or `negative`, an excluding one); a drag
// draws a box. Coordinates are the image's own pixels, whatever size it is shown at.

const DRAG_PX = 6; // a pointer moving further than this (on screen) draws a box
const MASK_RGB = [0, 150, 255];

export class MaskCanvas {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {(selection: {points: number[][], labels: number[], box: number[]|null}) => void} onChange
   */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onChange = onChange;
    this.negative = false;
    this.image = null;
    this.overlay = null; // a canvas: the mask, coloured, translucent
    this.clear();
    canvas.addEventListener("pointerdown", (event) => this._down(event));
    canvas.addEventListener("pointermove", (event) => this._move(event));
    canvas.addEventListener("pointerup", (event) => this._up(event));
    canvas.addEventListener("pointercancel", () => (this.drag = null));
  }

  /** Show `image` (an HTMLImageElement), forgetting the points, box and mask. */
  setImage(image) {
    this.image = image;
    this.canvas.width = image.naturalWidth;
    this.canvas.height = image.naturalHeight;
    this.clear();
  }

  clear() {
    this.points = [];
    this.box = null;
    this.drag = null;
    this.setMask(null);
  }

  /** Draw `mask` (an image, white selects) over the picture; null removes it. */
  setMask(mask) {
    this.overlay = mask ? tinted(mask, this.canvas.width, this.canvas.height) : null;
    this.canvas.dataset.mask = mask ? "shown" : "none";
    this.draw();
  }

  get selection() {
    return {
      points: this.points.map((p) => [p.x, p.y]),
      labels: this.points.map((p) => p.label),
      box: this.box,
    };
  }

  draw() {
    const { context: g, canvas } = this;
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.image) return;
    g.drawImage(this.image, 0, 0);
    if (this.overlay) g.drawImage(this.overlay, 0, 0);
    const unit = Math.max(canvas.width, canvas.height) / 100; // marks keep their look at any size
    g.lineWidth = Math.max(1, unit * 0.6);
    const box = this.drag?.box || this.box;
    if (box) {
      g.strokeStyle = "#ffd400";
      g.setLineDash([unit * 2, unit]);
      g.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
      g.setLineDash([]);
    }
    for (const point of this.points) {
      g.beginPath();
      g.arc(point.x, point.y, Math.max(2, unit * 1.6), 0, 2 * Math.PI);
      g.fillStyle = point.label ? "#1fbf4f" : "#e5322d";
      g.fill();
      g.strokeStyle = "#fff";
      g.stroke();
    }
  }

  _at(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * this.canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.canvas.height) / rect.height;
    return [clamp(x, 0, this.canvas.width - 1), clamp(y, 0, this.canvas.height - 1)];
  }

  _down(event) {
    if (!this.image || event.button !== 0) return;
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drag = { start: this._at(event), screen: [event.clientX, event.clientY], box: null };
  }

  _move(event) {
    if (!this.drag) return;
    const moved = Math.hypot(event.clientX - this.drag.screen[0], event.clientY - this.drag.screen[1]);
    if (moved < DRAG_PX && !this.drag.box) return;
    const [x0, y0] = this.drag.start;
    const [x1, y1] = this._at(event);
    this.drag.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map(Math.round);
    this.draw();
  }

  _up(event) {
    if (!this.drag) return;
    const { box } = this.drag;
    this.drag = null;
    if (box && box[2] > box[0] && box[3] > box[1]) {
      this.box = box;
    } else if (!box) {
      const [x, y] = this._at(event);
      const label = this.negative || event.shiftKey ? 0 : 1;
      this.points.push({ x: Math.round(x), y: Math.round(y), label });
    }
    this.draw();
    this.onChange(this.selection);
  }
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

/** The mask as a translucent colour layer: its grey level becomes the layer's alpha. */
function tinted(mask, width, height) {
  const layer = document.createElement("canvas");
  layer.width = width;
  layer.height = height;
  const g = layer.getContext("2d", { willReadFrequently: true });
  g.drawImage(mask, 0, 0, width, height);
  const pixels = g.getImageData(0, 0, width, height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const level = data[i];
    data[i] = MASK_RGB[0];
    data[i + 1] = MASK_RGB[1];
    data[i + 2] = MASK_RGB[2];
    data[i + 3] = level * 0.55;
  }
  g.putImageData(pixels, 0, 0);
  return layer;
}

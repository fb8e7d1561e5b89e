// A small line chart on a canvas: sharp on high-DPI screens, resizes with its box, redraws at most
// once a frame however many points arrive. Colours come from CSS custom properties (dark mode).

const PAD = { top: 12, right: 14, bottom: 30, left: 46 };

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

function ticks(min, max, target) {
  const step = niceStep(max - min || 1, target);
  const out = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-6; v += step) out.push(+v.toPrecision(12));
  return out;
}

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{ series: {key: string, color: string, dash?: number[], width?: number, dots?: boolean,
   *                     segment?: (x: number) => unknown}[],   // points in different segments are not joined
   *           yFormat?: (v: number) => string, yRange?: (values: number[]) => [number, number],
   *           empty?: string }} opts
   */
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts;
    /** @type {Map<string, { x: number, y: number }[]>} */
    this.data = new Map(opts.series.map((s) => [s.key, []])); // series key → its points, by x
    this.xMax = 1;
    this.pending = false;
    new ResizeObserver(() => this.redraw()).observe(canvas);
  }

  /** Drops every point; `xMax` is where the x axis ends (the number of epochs). */
  reset(xMax = 1) {
    for (const points of this.data.values()) points.length = 0;
    this.xMax = xMax;
    this.redraw();
  }

  /**
   * @param {string} key a series' key
   * @param {number} x
   * @param {number} y not drawn unless finite
   */
  add(key, x, y) {
    if (!Number.isFinite(y)) return;
    const points = this.data.get(key);
    // A point at the same x replaces the last one (a batch reported twice, an epoch re-sent).
    if (points.length && points.at(-1).x >= x) {
      while (points.length && points.at(-1).x >= x) points.pop();
    }
    points.push({ x, y });
    this.redraw();
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const { canvas, opts } = this;
    const css = getComputedStyle(canvas);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = `11px ${css.fontFamily}`;

    const values = [...this.data.values()].flat().map((p) => p.y);
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    const [yMin, yMax] = values.length ? (opts.yRange ?? defaultRange)(values) : [0, 1];
    const sx = (x) => PAD.left + (x / this.xMax) * plotW;
    const sy = (y) => PAD.top + (1 - (y - yMin) / (yMax - yMin || 1)) * plotH;
    const fmt = opts.yFormat ?? ((v) => String(+v.toPrecision(3)));

    // Grid and axis labels.
    ctx.strokeStyle = color('--chart-grid', '#e5e7eb');
    ctx.fillStyle = color('--chart-text', '#6b7280');
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of ticks(yMin, yMax, Math.max(2, Math.floor(plotH / 36)))) {
      const y = Math.round(sy(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(PAD.left, y);
      ctx.lineTo(PAD.left + plotW, y);
      ctx.stroke();
      ctx.fillText(fmt(t), PAD.left - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const xTicks = ticks(0, this.xMax, Math.max(2, Math.floor(plotW / 70))).filter((t) => Number.isInteger(t) || this.xMax <= 2);
    for (const t of xTicks) ctx.fillText(String(t), sx(t), PAD.top + plotH + 6);
    ctx.fillText('epoch', PAD.left + plotW / 2, PAD.top + plotH + 17);
    ctx.strokeStyle = color('--chart-axis', '#9ca3af');
    ctx.beginPath();
    ctx.moveTo(PAD.left + 0.5, PAD.top);
    ctx.lineTo(PAD.left + 0.5, PAD.top + plotH + 0.5);
    ctx.lineTo(PAD.left + plotW, PAD.top + plotH + 0.5);
    ctx.stroke();

    if (!values.length) {
      ctx.fillStyle = color('--chart-text', '#6b7280');
      ctx.textBaseline = 'middle';
      ctx.font = `13px ${css.fontFamily}`;
      ctx.fillText(opts.empty ?? 'No data yet', PAD.left + plotW / 2, PAD.top + plotH / 2);
      return;
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top - 4, plotW + 4, plotH + 8);
    ctx.clip();
    for (const s of opts.series) {
      const points = this.data.get(s.key);
      if (!points.length) continue;
      const stroke = color(s.color, s.color);
      ctx.strokeStyle = stroke;
      ctx.fillStyle = stroke;
      ctx.lineWidth = s.width ?? 1.5;
      ctx.setLineDash(s.dash ?? []);
      ctx.lineJoin = 'round';
      ctx.beginPath();
      points.forEach((p, i) => {
        const joined = i > 0 && (!s.segment || s.segment(points[i - 1].x) === s.segment(p.x));
        if (joined) ctx.lineTo(sx(p.x), sy(p.y));
        else ctx.moveTo(sx(p.x), sy(p.y));
      });
      ctx.stroke();
      ctx.setLineDash([]);
      if (s.dots || points.length === 1) {
        for (const p of points) {
          ctx.beginPath();
          ctx.arc(sx(p.x), sy(p.y), 3.5, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    }
    ctx.restore();
  }
}

function defaultRange(values) {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (min === max) [min, max] = [min - 0.5, max + 0.5];
  const pad = (max - min) * 0.08;
  return [Math.max(0, min - pad), max + pad];
}

/**
 * Accuracy: zoom in on the interesting part but never past 0…100 %.
 * @param {number[]} values
 * @returns {[number, number]}
 */
export function accuracyRange(values) {
  const min = Math.min(...values);
  const lo = Math.max(0, Math.floor((min - 0.02) * 20) / 20);
  return [lo, 1];
}

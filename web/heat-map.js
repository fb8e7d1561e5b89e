// The confusion matrix as a heat map on a canvas. Rows are the true digit, columns the prediction.
// Right answers (the diagonal) shade in one hue by the share of their row; mistakes in another,
// scaled to the largest mistake so small confusions still show. Arrow keys walk the cells and a
// readout says what the focused cell means, so it works without a mouse or eyes on the colours.

const LABEL = 26;

/** @typedef {number[][]} ConfusionMatrix counts; row: the true digit, column: the prediction */

export class HeatMap {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} [readout] says in words what the focused cell means
   */
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.readout = readout;
    /** @type {ConfusionMatrix | null} */
    this.matrix = null;
    /** @type {[number, number] | null} */
    this.cell = null; // [row, col] under focus or pointer
    canvas.tabIndex = 0;
    canvas.addEventListener('pointermove', (e) => this.pointAt(e));
    canvas.addEventListener('pointerleave', () => this.select(null));
    canvas.addEventListener('keydown', (e) => this.key(e));
    canvas.addEventListener('focus', () => this.cell ?? this.select([0, 0]));
    canvas.addEventListener('blur', () => this.select(null));
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** @param {ConfusionMatrix} matrix */
  show(matrix) {
    this.matrix = matrix;
    this.cell = null;
    this.describe();
    this.draw();
  }

  geometry() {
    const size = this.canvas.clientWidth;
    return { size, cell: (size - LABEL) / 10 };
  }

  /** @param {PointerEvent} e */
  pointAt(e) {
    const rect = this.canvas.getBoundingClientRect();
    const { cell } = this.geometry();
    const col = Math.floor((e.clientX - rect.left - LABEL) / cell);
    const row = Math.floor((e.clientY - rect.top - LABEL) / cell);
    this.select(row >= 0 && row < 10 && col >= 0 && col < 10 ? [row, col] : null);
  }

  /** @param {KeyboardEvent} e */
  key(e) {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    const [r, c] = this.cell ?? [0, 0];
    this.select([Math.min(9, Math.max(0, r + move[0])), Math.min(9, Math.max(0, c + move[1]))]);
  }

  /** @param {[number, number] | null} cell */
  select(cell) {
    if (String(cell) === String(this.cell)) return;
    this.cell = cell;
    this.describe();
    this.draw();
  }

  describe() {
    if (!this.readout) return;
    const m = this.matrix;
    if (!m) return void (this.readout.textContent = '');
    if (!this.cell) {
      this.readout.textContent = 'Point at a cell, or focus the map and use the arrow keys.';
      return;
    }
    const [r, c] = this.cell;
    const row = m[r].reduce((a, b) => a + b, 0);
    const n = m[r][c];
    const share = row ? ((100 * n) / row).toFixed(1) : '0.0';
    this.readout.textContent =
      r === c ? `${n} of ${row} images of a ${r} were recognised as ${r} (${share} %).` : `${n} of ${row} images of a ${r} were taken for a ${c} (${share} %).`;
  }

  draw() {
    const { canvas, matrix } = this;
    const css = getComputedStyle(canvas);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const dpr = window.devicePixelRatio || 1;
    const { size, cell } = this.geometry();
    if (!size) return;
    canvas.height = canvas.width = Math.round(size * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size, size);
    if (!matrix) return;

    const rows = matrix.map((r) => r.reduce((a, b) => a + b, 0) || 1);
    let worst = 0;
    matrix.forEach((r, i) => r.forEach((n, j) => i !== j && (worst = Math.max(worst, n / rows[i]))));
    const good = color('--heat-good', '37, 99, 235');
    const bad = color('--heat-bad', '220, 38, 38');
    const text = color('--text', '#111');

    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = `600 ${Math.max(9, Math.min(13, cell * 0.34))}px ${css.fontFamily}`;
    for (let i = 0; i < 10; i++) {
      ctx.fillStyle = color('--muted', '#666');
      ctx.fillText(String(i), LABEL + (i + 0.5) * cell, LABEL / 2); // predicted, across the top
      ctx.fillText(String(i), LABEL / 2, LABEL + (i + 0.5) * cell); // actual, down the side
    }
    ctx.font = `${Math.max(8, Math.min(12, cell * 0.3))}px ${css.fontFamily}`;
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        const n = matrix[i][j];
        const share = n / rows[i];
        const alpha = i === j ? 0.15 + 0.85 * share : worst ? Math.sqrt(share / worst) * 0.85 : 0;
        const x = LABEL + j * cell;
        const y = LABEL + i * cell;
        ctx.fillStyle = `rgba(${i === j ? good : bad}, ${alpha.toFixed(3)})`;
        ctx.fillRect(x + 1, y + 1, cell - 2, cell - 2);
        if (n > 0 && cell >= 22) {
          ctx.fillStyle = alpha > 0.55 ? '#fff' : text;
          ctx.fillText(n >= 10000 ? `${Math.round(n / 1000)}k` : String(n), x + cell / 2, y + cell / 2 + 0.5);
        }
      }
    }
    if (this.cell) {
      const [r, c] = this.cell;
      ctx.strokeStyle = color('--focus', '#f59e0b');
      ctx.lineWidth = 2.5;
      ctx.strokeRect(LABEL + c * cell + 1.25, LABEL + r * cell + 1.25, cell - 2.5, cell - 2.5);
    }
  }
}

/**
 * Accuracy per true digit: the diagonal over the row sum.
 * @type {(matrix: ConfusionMatrix) => number[]}
 */
export const perClassAccuracy = (matrix) => matrix.map((row, i) => {
  const total = row.reduce((a, b) => a + b, 0);
  return total ? row[i] / total : 0;
});

/**
 * The most frequent mistakes, largest first.
 * @param {ConfusionMatrix} matrix
 * @param {number} [count]
 */
export function topConfusions(matrix, count = 5) {
  /** @type {{ actual: number, predicted: number, count: number }[]} */
  const out = [];
  matrix.forEach((row, i) => row.forEach((n, j) => i !== j && n > 0 && out.push({ actual: i, predicted: j, count: n })));
  return out.sort((a, b) => b.count - a.count).slice(0, count);
}

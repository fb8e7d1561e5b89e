// Draw tab: a canvas to draw a digit with mouse, pen or finger (pointer events), predictions as you
// draw, PNG upload. The canvas is exported as it looks: dark ink on white, 280×280, and the server
// turns that into an MNIST-like 28×28 image.

import { api } from './api.js';
import { $, formatPercent, h, showError } from './dom.js';

const INK = '#111827';
const PAPER = '#ffffff';
const LINE_WIDTH = 20; // at 280 px: MNIST's strokes are about 2 px of 28
const DEBOUNCE_MS = 150;

/**
 * @param {object} deps
 * @param {(fn: (list: import('./api.js').ModelList) => unknown) => void} deps.onModelsChanged
 */
export function setupDraw({ onModelsChanged }) {
  /** @type {HTMLCanvasElement} */
  const pad = $('#pad');
  const ctx = pad.getContext('2d', { willReadFrequently: false });
  const placeholder = $('#pad-placeholder');
  /** @type {HTMLSelectElement} */
  const versionSelect = $('#predict-version');
  /** @type {HTMLInputElement} */
  const upload = $('#upload');
  const error = $('#draw-error');
  const bars = buildBars($('#probs'));

  let hasInk = false;
  /** @type {Blob | null} */
  let uploaded = null; // the uploaded file, sent as it is until someone draws over it
  /** @type {{ x: number, y: number } | null} */
  let last = null; // where the pointer was, while a stroke goes on
  let timer = 0;
  let inFlight = false;
  let again = false;
  let seq = 0;
  /** What the shown prediction was made of, so a correction can name it (or resend it). */
  let answered = /** @type {{ predictionId?: string, png: Blob, digit: number } | null} */ (null);

  const feedback = $('#feedback');
  const feedbackStatus = $('#feedback-status');
  const digitButtons = $('#feedback-digits');
  for (let digit = 0; digit < 10; digit++) {
    const button = h('button', { type: 'button', class: 'small', 'aria-label': `it was a ${digit}` }, String(digit));
    button.addEventListener('click', () => void correct(digit));
    digitButtons.append(button);
  }
  $('#feedback-right').addEventListener('click', () => answered && void correct(answered.digit));

  /** Sends the shown digit back with its label: by its predictionId, or as the image when it has none. */
  async function correct(label) {
    const shown = answered;
    if (!shown) return;
    try {
      const body = shown.predictionId ? { predictionId: shown.predictionId, label } : { image: await blobToBase64(shown.png), label };
      const { items, total } = await api.feedback(body);
      if (answered !== shown) return; // a newer drawing is shown now
      const what = items[0].status === 'relabelled' ? 'relabelled as' : 'kept as';
      feedbackStatus.textContent = `Thanks: ${what} a ${label}. ${total} correction${total === 1 ? '' : 's'} so far; fine-tune on them in the Train tab (dataset "Your corrections").`;
    } catch (err) {
      showError(error, `Could not send the correction: ${err.message}`);
    }
  }

  function clear() {
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, pad.width, pad.height);
    hasInk = false;
    uploaded = null;
    seq++; // an answer still on its way is for a drawing that is gone
    placeholder.hidden = false;
    showResult(null);
  }

  const point = (e) => {
    const rect = pad.getBoundingClientRect();
    return { x: ((e.clientX - rect.left) * pad.width) / rect.width, y: ((e.clientY - rect.top) * pad.height) / rect.height };
  };

  function stroke(from, to) {
    ctx.strokeStyle = INK;
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  pad.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    stroke(last, last); // a dot
    hasInk = true;
    uploaded = null;
    placeholder.hidden = true;
    schedule();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!last) return;
    const events = e.getCoalescedEvents?.() ?? [e];
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      stroke(last, p);
      last = p;
    }
    schedule();
  });
  const end = () => {
    if (!last) return;
    last = null;
    predictNow();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);

  $('#clear').addEventListener('click', clear);
  $('#upload-button').addEventListener('click', () => upload.click());
  upload.addEventListener('change', () => {
    const file = upload.files?.[0];
    upload.value = '';
    if (file) void useFile(file);
  });
  pad.addEventListener('dragover', (e) => e.preventDefault());
  pad.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) void useFile(file);
  });
  versionSelect.addEventListener('change', () => predictNow());
  window.addEventListener('keydown', (e) => {
    // Escape clears the drawing while the Draw tab is shown (and no form field has focus).
    if (e.key === 'Escape' && !$('#panel-draw').hidden && !(e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement)) clear();
  });

  async function useFile(file) {
    if (file.type && file.type !== 'image/png') return showError(error, `${file.name} is not a PNG image.`);
    const bitmap = await createImageBitmap(file).catch(() => null);
    if (!bitmap) return showError(error, `${file.name} could not be read as an image.`);
    // Shown fitted into the pad; the file itself is what gets classified.
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, pad.width, pad.height);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale;
    const h = bitmap.height * scale;
    ctx.imageSmoothingEnabled = bitmap.width > pad.width;
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    bitmap.close();
    uploaded = file;
    hasInk = true;
    placeholder.hidden = true;
    predictNow();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(predictNow, DEBOUNCE_MS);
  }

  // One request at a time; what was drawn meanwhile is sent as soon as it answers.
  async function predictNow() {
    clearTimeout(timer);
    if (!hasInk) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const mine = ++seq;
    try {
      const body = uploaded ?? (await new Promise((resolve) => pad.toBlob(resolve, 'image/png')));
      const result = await api.predict(body, versionSelect.value || undefined);
      if (mine === seq && hasInk) showResult(result, body);
    } catch (err) {
      // A 503 with Retry-After is a busy moment (the next stroke asks again), without it no model yet.
      if (err.status === 503 && err.retryAfter === null) showNoModel(err.message);
      else showError(error, err.message);
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        void predictNow();
      }
    }
  }

  function showResult(result, png) {
    error.hidden = true;
    const prediction = result?.predictions?.[0];
    answered = prediction && png ? { predictionId: prediction.predictionId, png, digit: prediction.digit } : null;
    feedback.hidden = !answered;
    feedbackStatus.textContent = '';
    $('#pred-digit').textContent = prediction ? String(prediction.digit) : '–';
    $('#pred-digit').classList.toggle('empty', !prediction);
    $('#pred-confidence').textContent = prediction ? `${formatPercent(prediction.confidence)} sure` : 'Draw a digit and the model will guess as you go.';
    $('#pred-version').textContent = result ? `answered by model version ${result.modelVersion}` : '';
    bars.show(prediction?.probabilities, prediction?.digit);
  }

  function showNoModel(message) {
    showResult(null);
    showError(error, `${message} — or start one in the Train tab.`);
  }

  /** @param {import('./api.js').ModelList} list */
  async function refreshVersions(list) {
    const chosen = versionSelect.value;
    versionSelect.replaceChildren(new Option(list.servedVersion ? `served (v${list.servedVersion})` : 'served', ''));
    for (const m of list.items) versionSelect.add(new Option(`v${m.version} · ${formatPercent(m.testAccuracy)}`, String(m.version)));
    versionSelect.value = list.items.some((m) => String(m.version) === chosen) ? chosen : '';
  }

  onModelsChanged(refreshVersions);
  clear();
}

/** @param {Blob} blob */
async function blobToBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/**
 * One bar per digit in `list`; `show` sets them, or empties them without probabilities.
 * @param {HTMLElement} list
 */
function buildBars(list) {
  const rows = Array.from({ length: 10 }, (_, digit) => {
    const fill = h('span', { class: 'prob-fill' });
    const value = h('span', { class: 'prob-value' }, '–');
    const li = h('li', {}, h('span', { class: 'prob-digit' }, String(digit)), h('span', { class: 'prob-track' }, fill), value);
    list.append(li);
    return { li, fill, value };
  });
  return {
    /**
     * @param {number[] | undefined} probabilities
     * @param {number | undefined} best the digit to highlight
     */
    show(probabilities, best) {
      rows.forEach((row, digit) => {
        const p = probabilities?.[digit] ?? 0;
        row.fill.style.width = `${(p * 100).toFixed(1)}%`;
        row.value.textContent = probabilities ? formatPercent(p) : '–';
        row.li.classList.toggle('best', probabilities !== undefined && digit === best);
        row.li.setAttribute('aria-label', probabilities ? `${digit}: ${formatPercent(p)}` : `${digit}`);
      });
    },
  };
}

// Models tab: every version with its test accuracy and lineage, one version in detail (parameters,
// training curve, confusion matrix heat map, per-class accuracy, optionally against another
// version), and pinning the served version when the server supports it.

import { api } from './api.js';
import { $, formatAgo, formatDuration, formatNumber, formatPercent, h, showError } from './dom.js';
import { HeatMap, perClassAccuracy, topConfusions } from './heat-map.js';
import { accuracyRange, LineChart } from './line-chart.js';

/**
 * @param {object} deps
 * @param {(fn: (list: import('./api.js').ModelList) => unknown) => void} deps.onModelsChanged
 * @param {() => Promise<unknown>} deps.modelsChanged refreshes the model list (after pinning)
 */
export function setupModels({ onModelsChanged, modelsChanged }) {
  const tbody = $('#versions-body');
  const detail = $('#model-detail');
  const error = $('#models-error');
  const heat = new HeatMap($('#confusion'), $('#confusion-readout'));
  const history = new LineChart($('#history-chart'), {
    series: [
      { key: 'val', color: '--series-val', width: 2, dash: [5, 4], dots: true },
      { key: 'train', color: '--series-epoch', width: 2.5, dots: true },
    ],
    yFormat: (v) => `${Math.round(v * 100)}%`,
    yRange: accuracyRange,
    empty: 'No per-epoch history',
  });
  const historyLoss = new LineChart($('#history-loss-chart'), {
    series: [
      { key: 'val', color: '--series-val', width: 2, dash: [5, 4], dots: true },
      { key: 'train', color: '--series-epoch', width: 2.5, dots: true },
    ],
    empty: 'No per-epoch history',
  });
  /** @type {HTMLSelectElement} */
  const compareSelect = $('#compare-version');
  /** @type {HTMLSelectElement} */
  const matrixSelect = $('#matrix-source');
  /** @type {import('./api.js').ModelList} */
  let list = { items: [], servedVersion: null, pinnedVersion: null, servingPolicy: 'best' };
  let metas = new Map();
  let selected = null;
  let rendered = null; // the version the detail shows
  let pinnedVersion = null;

  onModelsChanged(async (next) => {
    list = next;
    pinnedVersion = next.pinnedVersion ?? null;
    // Lineage and held-out metrics live in each version's metadata; versions are immutable, so fetch
    // each once it has been read (a failed read is tried again at the next refresh).
    await Promise.all(next.items.filter((m) => !metas.has(m.version)).map(async (m) => {
      const meta = await api.model(m.version).catch(() => null);
      if (meta) metas.set(m.version, meta);
    }));
    renderList();
    if (selected === null || !next.items.some((m) => m.version === selected)) selected = next.items[0]?.version ?? null;
    if (selected === null) detail.hidden = true;
    // A periodic refresh must not undo what someone is looking at (comparison, matrix, focused cell).
    else if (selected !== rendered) void renderDetail(selected);
    else {
      renderBadges(selected);
      fillCompare(selected);
    }
  });

  function renderList() {
    $('#pin-status').replaceChildren(...pinStatus());
    if (!list.items.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty-row' }, 'No model versions yet. Train one in the Train tab.')));
      return;
    }
    const best = Math.max(...list.items.map((m) => m.testAccuracy));
    tbody.replaceChildren(...list.items.map((m) => {
      const meta = metas.get(m.version);
      const lineage = !meta ? '' : meta.lineage ? `fine-tuned from v${meta.lineage.baseVersion} on ${meta.lineage.dataset}` : meta.params.source === 'import' ? 'imported' : `trained on ${formatNumber(meta.dataset.trainCount)} images`;
      const accBar = h('span', { class: 'acc-track' }, h('span', { class: 'acc-fill' }));
      /** @type {HTMLElement} */ (accBar.firstChild).style.width = `${Math.max(0, (m.testAccuracy - 0.8) / 0.2) * 100}%`; // 80 … 100 %
      return h('tr', { class: m.version === selected ? 'selected' : '' },
        h('td', {}, h('button', { type: 'button', class: 'link strong', 'aria-label': `Show version ${m.version}`, onclick: () => show(m.version) }, `v${m.version}`)),
        h('td', {}, m.architecture, h('div', { class: 'muted small' }, lineage)),
        h('td', { class: 'acc' }, h('span', { class: m.testAccuracy === best ? 'strong' : '' }, formatPercent(m.testAccuracy, 2)), accBar),
        h('td', { class: 'hide-narrow muted' }, formatAgo(m.createdAt)),
        h('td', { title: m.servingReason ?? '' }, m.served ? h('span', { class: 'badge served' }, pinnedVersion === m.version ? 'served · pinned' : 'served') : h('span', { class: 'muted small serving-reason' }, shortReason(m.servingReason))),
        h('td', { class: 'actions' }, pinButton(m)),
      );
    }));
  }

  function pinStatus() {
    return [...servingLine(), ...canaryLine()];
  }

  /** A canary started with PUT /v1/models/serving: its share, and the two ways to end it. */
  function canaryLine() {
    const canary = list.canary;
    if (!canary) return [];
    return [
      h('span', { class: 'canary-status' }, ` Version ${canary.version} answers ${formatPercent(canary.fraction, 0)} of predictions as a canary. `),
      h('button', { type: 'button', class: 'small', onclick: () => changeServing(() => api.promoteCanary()) }, 'Promote'),
      ' ',
      h('button', { type: 'button', class: 'small', onclick: () => changeServing(() => api.endCanary()) }, 'End canary'),
    ];
  }

  function servingLine() {
    if (pinnedVersion) {
      return [`Version ${pinnedVersion} is pinned. `, h('button', { type: 'button', class: 'small', onclick: () => unpin() }, 'Unpin')];
    }
    const policy = {
      best: 'A new version is served only if its test accuracy is at least the served one\'s, or, tuned on corrections, if it passed its promotion gate (SERVING_POLICY=best); pin another to serve it or to roll back.',
      newest: 'The newest version is served, unless it was tuned on corrections and failed its promotion gate (SERVING_POLICY=newest); pin another to roll back.',
      manual: 'The first version is served until you pin another (SERVING_POLICY=manual).',
    };
    return [policy[list.servingPolicy] ?? policy.best];
  }

  /**
   * The gist of why a version is not served, for the table (the whole reason is its cell's title).
   * @param {string | undefined} reason
   */
  function shortReason(reason) {
    if (!reason) return '';
    const gist = reason.split(/[:;(]/)[0].trim();
    const share = /^canary: answers ([\d.]+ %)/.exec(reason);
    if (share) return `canary · ${share[1]}`;
    return /promotion gate failed/.test(reason) ? `${gist} · gate failed` : gist;
  }

  function pinButton(m) {
    if (m.served) return '';
    return h('button', { type: 'button', class: 'small', onclick: () => pin(m.version) }, 'Serve this');
  }

  async function pin(version) {
    await changeServing(() => api.pin(version));
  }
  async function unpin() {
    await changeServing(() => api.unpin());
  }
  async function changeServing(call) {
    error.hidden = true;
    try {
      pinnedVersion = (await call())?.pinnedVersion ?? null;
    } catch (err) {
      showError(error, err.message);
    }
    void modelsChanged();
  }

  async function show(version) {
    selected = version;
    renderList();
    await renderDetail(version);
    detail.scrollIntoView({ behavior: 'smooth', block: 'start' });
    $('#detail-title').focus({ preventScroll: true });
  }

  async function renderDetail(version) {
    let meta = metas.get(version);
    if (!meta) {
      try {
        meta = await api.model(version);
        metas.set(version, meta);
      } catch (err) {
        return showError(error, err.message);
      }
    }
    detail.hidden = false;
    rendered = version;
    $('#detail-title').textContent = `Version ${version}`;
    renderBadges(version);
    const m = meta.metrics;
    const stats = [
      ['Test accuracy', formatPercent(m.testAccuracy, 2)],
      ['Test loss', m.testLoss.toFixed(4)],
      m.heldOut ? ['Held-out accuracy', `${formatPercent(m.heldOut.accuracy, 2)} (${m.heldOut.count} of ${m.heldOut.dataset})`] : null,
      ['Weights', '…'],
      meta.params.source === 'import' ? ['Origin', 'imported (trained elsewhere)'] : ['Trained on', `${formatNumber(meta.dataset.trainCount)} images (${meta.dataset.name})`],
      ['Training time', formatDuration(meta.durationMs)],
      ['Backend', meta.backend],
      ['Served by', servedBy(meta.onnx)],
      ['Created', new Date(meta.createdAt).toLocaleString()],
      meta.lineage ? ['Lineage', `v${meta.lineage.baseVersion} → v${version}, tuned on ${meta.lineage.dataset}`] : null,
    ].filter(Boolean);
    $('#detail-stats').replaceChildren(...stats.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-stat': k }, v)]));
    void countWeights(version).then((n) => {
      const dd = detail.querySelector('[data-stat="Weights"]');
      if (dd && selected === version) dd.textContent = n === null ? 'unknown' : formatNumber(n);
    });
    $('#detail-params').replaceChildren(...Object.entries(meta.params).filter(([k]) => k !== 'type').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));

    history.reset(Math.max(1, meta.history.length));
    historyLoss.reset(Math.max(1, meta.history.length));
    for (const s of meta.history) {
      history.add('train', s.epoch, s.accuracy);
      historyLoss.add('train', s.epoch, s.loss);
      if (s.valAccuracy !== undefined) history.add('val', s.epoch, s.valAccuracy);
      if (s.valLoss !== undefined) historyLoss.add('val', s.epoch, s.valLoss);
    }
    $('#history-val-legend').hidden = !meta.history.some((s) => s.valAccuracy !== undefined);

    // The matrix: MNIST test, or the fine-tuning dataset's held-out part when there is one.
    matrixSelect.replaceChildren(new Option('MNIST test set', 'test'));
    if (m.heldOut) matrixSelect.add(new Option(`held-out part of ${m.heldOut.dataset}`, 'heldOut'));
    matrixSelect.parentElement.hidden = !m.heldOut;
    matrixSelect.value = 'test';

    compareSelect.value = '';
    fillCompare(version);
    renderMatrix();
  }

  function renderBadges(version) {
    const meta = metas.get(version);
    const summary = list.items.find((m) => m.version === version);
    $('#detail-badges').replaceChildren(...[
      h('span', { class: 'badge' }, meta.architecture),
      summary?.served ? h('span', { class: 'badge served' }, pinnedVersion === version ? 'served · pinned' : 'served') : null,
      meta.lineage ? h('span', { class: 'badge lineage' }, `fine-tuned from v${meta.lineage.baseVersion}`) : null,
    ].filter(Boolean));
  }

  /** The other versions to compare with, keeping the current choice. */
  function fillCompare(version) {
    const chosen = compareSelect.value;
    compareSelect.replaceChildren(new Option('nothing', ''));
    for (const other of list.items) if (other.version !== version) compareSelect.add(new Option(`v${other.version} · ${formatPercent(other.testAccuracy)}`, String(other.version)));
    compareSelect.value = [...compareSelect.options].some((o) => o.value === chosen) ? chosen : '';
    compareSelect.parentElement.hidden = list.items.length < 2;
  }

  function renderMatrix() {
    const meta = metas.get(selected);
    if (!meta) return;
    const matrix = matrixSelect.value === 'heldOut' && meta.metrics.heldOut ? meta.metrics.heldOut.confusionMatrix : meta.metrics.confusionMatrix;
    heat.show(matrix);
    const confusions = topConfusions(matrix);
    $('#confusions').replaceChildren(...(confusions.length
      ? confusions.map((c) => h('li', {}, h('strong', {}, `${c.actual} → ${c.predicted}`), ` ${c.count}×`))
      : [h('li', {}, 'No mistakes at all.')]));
    void renderPerClass(matrix);
  }

  async function renderPerClass(matrix) {
    const mine = perClassAccuracy(matrix);
    const otherVersion = Number(compareSelect.value) || null;
    let theirs = null;
    if (otherVersion) {
      let other = metas.get(otherVersion);
      if (!other) other = await api.model(otherVersion).catch(() => null);
      if (other) {
        metas.set(otherVersion, other);
        const useHeldOut = matrixSelect.value === 'heldOut' && other.metrics.heldOut?.dataset === metas.get(selected)?.metrics.heldOut?.dataset;
        theirs = perClassAccuracy(useHeldOut ? other.metrics.heldOut.confusionMatrix : other.metrics.confusionMatrix);
      }
    }
    const lo = Math.min(0.8, ...mine, ...(theirs ?? [])) ; // the scale starts at 80 % unless something is worse
    const floor = Math.floor(lo * 10) / 10;
    const scale = (p) => `${(((p - floor) / (1 - floor)) * 100).toFixed(1)}%`;
    $('#per-class-scale').textContent = `bars from ${formatPercent(floor, 0)} to 100%`;
    $('#per-class-legend').hidden = !theirs;
    if (theirs) $('#per-class-other').textContent = `v${otherVersion}`;
    $('#per-class-this').textContent = `v${selected}`;
    $('#per-class').replaceChildren(...mine.map((p, digit) => {
      const row = h('li', { 'aria-label': `digit ${digit}: ${formatPercent(p, 2)}${theirs ? `, v${otherVersion} ${formatPercent(theirs[digit], 2)}` : ''}` },
        h('span', { class: 'prob-digit' }, String(digit)),
        h('span', { class: 'class-bars' },
          h('span', { class: 'prob-track' }, h('span', { class: 'prob-fill' })),
          theirs ? h('span', { class: 'prob-track other' }, h('span', { class: 'prob-fill' })) : null),
        h('span', { class: 'prob-value' }, formatPercent(p, 1), theirs ? h('span', { class: delta(p, theirs[digit]).cls }, ` ${delta(p, theirs[digit]).text}`) : null),
      );
      const fills = /** @type {NodeListOf<HTMLElement>} */ (row.querySelectorAll('.prob-fill'));
      fills[0].style.width = scale(p);
      if (theirs) fills[1].style.width = scale(theirs[digit]);
      return row;
    }));
  }

  matrixSelect.addEventListener('change', renderMatrix);
  compareSelect.addEventListener('change', () => {
    const meta = metas.get(selected);
    if (meta) void renderPerClass(matrixSelect.value === 'heldOut' && meta.metrics.heldOut ? meta.metrics.heldOut.confusionMatrix : meta.metrics.confusionMatrix);
  });

  return {
    show,
    shown() {
      history.redraw();
      historyLoss.redraw();
      heat.draw();
    },
  };
}

/**
 * This version's accuracy against the other's, in percentage points.
 * @param {number} mine
 * @param {number} theirs
 */
/**
 * What serves a version: its proven model.onnx on ONNX Runtime, or the TF.js files (and why).
 * @param {{ status: string, reason?: string, parity?: { images: number, maxProbabilityDifference: number } } | undefined} onnx
 */
function servedBy(onnx) {
  if (!onnx) return "TF.js (written before ONNX copies; the workers' backfill exports it)";
  if (onnx.status === 'exported' && onnx.parity) return `ONNX Runtime (model.onnx, within ${onnx.parity.maxProbabilityDifference.toExponential(1)} of TF.js on ${formatNumber(onnx.parity.images)} test images)`;
  return `TF.js: ${onnx.reason ?? onnx.status}`;
}

function delta(mine, theirs) {
  const d = (mine - theirs) * 100;
  if (Math.abs(d) < 0.05) return { text: '±0', cls: 'muted' };
  return { text: `${d > 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}`, cls: d > 0 ? 'better' : 'worse' };
}

/** @type {Map<number, Promise<number | null>>} */
const weightCounts = new Map();
/**
 * Number of weights, from the shapes in model.json's weights manifest (no weights downloaded).
 * @param {number} version
 * @returns {Promise<number | null>} null when model.json cannot be read
 */
function countWeights(version) {
  if (!weightCounts.has(version)) {
    weightCounts.set(version, api.modelJson(version).then(
      (json) => json.weightsManifest.flatMap((g) => g.weights).reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1), 0),
      () => null,
    ));
  }
  return weightCounts.get(version);
}

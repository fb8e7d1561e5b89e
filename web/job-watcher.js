// The watched job: its progress, and live loss and accuracy curves fed by its server-sent events.

import { api, FINISHED_STATES } from './api.js';
import { $, formatPercent, h, stateBadge } from './dom.js';
import { describeParams } from './job-list.js';
import { accuracyRange, LineChart } from './line-chart.js';

// Batch values are running means that restart every epoch, so each epoch is its own line.
/** @param {number} x */
const epochOf = (x) => Math.ceil(x - 1e-9);

/**
 * @param {object} deps
 * @param {() => void} deps.onFinished the watched job ended
 * @param {(version: number) => void} deps.showModel
 * @param {(id: string, button?: HTMLButtonElement) => Promise<void>} deps.cancel
 */
export function createJobWatcher({ onFinished, showModel, cancel }) {
  const loss = new LineChart($('#loss-chart'), {
    series: [
      { key: 'batch', color: '--series-batch', width: 1.5, segment: epochOf },
      { key: 'val', color: '--series-val', width: 2, dash: [5, 4], dots: true },
      { key: 'epoch', color: '--series-epoch', width: 2.5, dots: true },
    ],
    empty: 'Waiting for the first batch…',
  });
  const accuracy = new LineChart($('#accuracy-chart'), {
    series: [
      { key: 'batch', color: '--series-batch', width: 1.5, segment: epochOf },
      { key: 'val', color: '--series-val', width: 2, dash: [5, 4], dots: true },
      { key: 'epoch', color: '--series-epoch', width: 2.5, dots: true },
    ],
    yFormat: (v) => `${Math.round(v * 100)}%`,
    yRange: accuracyRange,
    empty: 'Waiting for the first batch…',
  });
  const panel = $('#watch');
  const title = $('#watch-title');
  const badge = $('#watch-state');
  const bar = $('#watch-progress');
  const text = $('#watch-text');
  const result = $('#watch-result');
  /** @type {HTMLButtonElement} */
  const cancelButton = $('#watch-cancel');
  const connection = $('#watch-connection');
  /** @type {ReturnType<typeof api.jobEvents> | null} */
  let source = null;
  /** @type {import('./api.js').Job | null} */
  let job = null;

  cancelButton.addEventListener('click', () => job && cancel(job.id, cancelButton));

  /** @param {import('./api.js').Job} target */
  function watch(target) {
    source?.close();
    job = target;
    cancelButton.disabled = false; // a cancel still in flight was for the job watched before
    cancelButton.textContent = 'Cancel job';
    panel.dataset.state = target.state;
    panel.classList.remove('idle');
    loss.reset(target.params.epochs);
    accuracy.reset(target.params.epochs);
    render();
    const rows = /** @type {NodeListOf<HTMLTableRowElement>} */ (document.querySelectorAll('#jobs-body tr'));
    rows.forEach((tr) => {
      const on = tr.dataset.job === target.id;
      tr.classList.toggle('watching', on);
      const button = tr.querySelector('button[aria-pressed]');
      if (button) {
        button.setAttribute('aria-pressed', String(on));
        button.textContent = on ? 'Watching' : 'Watch';
      }
    });
    source = api.jobEvents(target.id); // an EventSource, or its fetch twin when an API key is set
    const mine = source;
    /**
     * Handles event `name` while this is still the watched job's stream; its data is JSON from the API.
     * @type {(name: string, fn: (data: any) => void) => void}
     */
    const on = (name, fn) => mine.addEventListener(name, (e) => mine === source && fn(JSON.parse(/** @type {MessageEvent} */ (e).data)));
    on('job', (view) => {
      job = view;
      for (const s of view.history) addEpoch(s);
      if (view.progress) addBatch(view.progress);
      render();
    });
    on('progress', (p) => {
      job.progress = p;
      addBatch(p);
      render();
    });
    on('epoch', (stats) => {
      job.history = [...job.history.filter((s) => s.epoch !== stats.epoch), stats];
      addEpoch(stats);
      render();
    });
    on('state', (view) => {
      job = { ...view, progress: job.progress ?? view.progress, history: job.history.length >= view.history.length ? job.history : view.history };
      render();
    });
    on('end', () => {
      mine.close();
      connection.textContent = '';
      onFinished();
    });
    mine.addEventListener('open', () => (connection.textContent = ''));
    mine.addEventListener('error', () => {
      if (mine !== source) return;
      connection.textContent = mine.readyState === EventSource.CLOSED ? 'Lost the live connection.' : 'Reconnecting…';
    });
  }

  /** @param {import('./api.js').BatchProgress} p */
  function addBatch(p) {
    const x = p.epoch - 1 + p.batch / p.batches;
    loss.add('batch', x, p.loss);
    accuracy.add('batch', x, p.accuracy);
  }

  /** @param {import('./api.js').EpochStats} s */
  function addEpoch(s) {
    loss.add('epoch', s.epoch, s.loss);
    accuracy.add('epoch', s.epoch, s.accuracy);
    if (s.valLoss !== undefined) loss.add('val', s.epoch, s.valLoss);
    if (s.valAccuracy !== undefined) accuracy.add('val', s.epoch, s.valAccuracy);
  }

  function render() {
    const p = job.progress;
    panel.dataset.state = job.state;
    title.replaceChildren(`${job.type === 'finetune' ? 'Fine-tune' : 'Training'} job `, h('code', { title: job.id }, job.id.slice(0, 8)));
    badge.replaceChildren(stateBadge(job.state));
    $('#watch-params').textContent = describeParams(job.params);
    const fraction = job.state === 'succeeded' ? 1 : p ? (p.epoch - 1 + p.batch / p.batches) / p.epochs : 0;
    bar.style.width = `${(fraction * 100).toFixed(1)}%`;
    bar.parentElement.setAttribute('aria-valuenow', String(Math.round(fraction * 100)));
    text.textContent = p
      ? `Epoch ${p.epoch} of ${p.epochs} · batch ${p.batch} of ${p.batches} · loss ${p.loss.toFixed(3)} · accuracy ${formatPercent(p.accuracy)}`
      : job.state === 'queued' ? 'Queued: waiting for a worker to pick it up.' : job.state === 'running' ? 'Starting: loading data…' : '';
    cancelButton.hidden = FINISHED_STATES.has(job.state);
    if (FINISHED_STATES.has(job.state)) {
      cancelButton.disabled = false;
      cancelButton.textContent = 'Cancel job';
    } else if (job.cancelRequested) {
      cancelButton.disabled = true;
      cancelButton.textContent = 'Cancelling…';
    }
    result.replaceChildren(...resultLine(job, showModel));
    result.hidden = !FINISHED_STATES.has(job.state);
  }

  return {
    watch,
    current: () => job?.id,
    redraw: () => {
      loss.redraw();
      accuracy.redraw();
    },
  };
}

/**
 * What a finished job came to, as children for `h`.
 * @param {import('./api.js').Job} job
 * @param {(version: number) => void} showModel
 * @returns {(Node | string)[]}
 */
function resultLine(job, showModel) {
  if (job.state === 'succeeded' && job.modelVersion) {
    return [
      `Wrote model version ${job.modelVersion}: test accuracy `,
      h('strong', {}, formatPercent(job.metrics.testAccuracy, 2)),
      '. ',
      h('button', { type: 'button', class: 'link', onclick: () => showModel(job.modelVersion) }, `See v${job.modelVersion} in Models`),
    ];
  }
  if (job.state === 'failed') return [h('strong', {}, 'Failed: '), job.error ?? 'unknown error'];
  if (job.state === 'cancelled') {
    const p = job.progress;
    return [p ? `Cancelled during epoch ${p.epoch}, batch ${p.batch}; no model was written.` : 'Cancelled before it started; no model was written.'];
  }
  return [];
}

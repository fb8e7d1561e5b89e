// Train tab: a form for train and fine-tune jobs, the job list, and the job being watched with
// live loss and accuracy curves fed by its server-sent event stream.

import { api } from './api.js';
import { $, formatAgo, formatPercent, h, showError, stateBadge } from './dom.js';
import { accuracyRange, LineChart } from './line-chart.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const LIST_REFRESH_MS = 3000;
// Only what differs from the API's defaults (see README, "Training recipe").
const PRESETS = {
  quick: { kind: 'train', epochs: 1, limit: 3000 },
  full: { kind: 'train' },
  // README, "Best accuracy": the resnet with augmentation.
  best: { kind: 'train', architecture: 'resnet', epochs: 20, rotation: 10, shift: 2, scaleMin: 0.9, scaleMax: 1.1 },
};

export function setupTrain({ isVisible, onModelsChanged, modelsChanged, showModel }) {
  const form = $('#train-form');
  const formError = $('#train-error');
  const submit = $('#train-submit');
  const watcher = createWatcher({
    onFinished: () => {
      void refreshList();
      void modelsChanged();
      // The API switches to a new version a moment after the job ends (after loading and warming it up).
      setTimeout(modelsChanged, 2000);
    },
    showModel,
    cancel,
  });

  // --- the form -------------------------------------------------------------------------------
  const kind = () => form.elements.kind.value;
  let schemas = {}; // job type → its request schema's properties, from the API's OpenAPI document
  function showKind() {
    const k = kind();
    $('#train-only').disabled = $('#train-only').hidden = k !== 'train';
    $('#finetune-only').disabled = $('#finetune-only').hidden = k !== 'finetune';
    applySchema(form, schemas[k]);
    submit.textContent = k === 'train' ? 'Start training' : 'Start fine-tuning';
    if (k === 'finetune') void refreshDatasets();
  }
  // Defaults and choices come from the API's own schema, so the form cannot drift from it.
  api.spec().then((spec) => {
    const branches = spec.paths?.['/v1/jobs']?.post?.requestBody?.content?.['application/json']?.schema?.oneOf ?? [];
    schemas = Object.fromEntries(branches.map((b) => [b.properties?.type?.enum?.[0], b.properties]));
    showKind();
  }, () => undefined);
  for (const radio of form.elements.kind) radio.addEventListener('change', showKind);

  for (const button of form.querySelectorAll('[data-preset]')) {
    button.addEventListener('click', () => {
      const preset = PRESETS[button.dataset.preset];
      for (const input of form.querySelectorAll('input[type=number]')) input.value = '';
      form.elements.kind.value = preset.kind;
      for (const select of form.querySelectorAll('select[data-schema]')) select.value = '';
      for (const [name, value] of Object.entries(preset)) if (name !== 'kind') form.elements[name].value = String(value);
      showKind();
    });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.hidden = true;
    submit.disabled = true;
    try {
      const job = await api.createJob(requestFromForm(form, kind()));
      watcher.watch(job);
      void refreshList();
    } catch (err) {
      showError(formError, err.message);
    } finally {
      submit.disabled = false;
    }
  });

  onModelsChanged((list) => {
    const select = form.elements.baseModel;
    const chosen = select.value;
    select.replaceChildren(new Option(list.items.length ? `latest (v${list.items[0].version})` : 'latest (none yet)', 'latest'));
    for (const m of list.items) select.add(new Option(`v${m.version} · ${m.architecture} · ${formatPercent(m.testAccuracy)}`, String(m.version)));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : 'latest';
  });

  async function refreshDatasets(select) {
    const el = form.elements.dataset;
    const chosen = select ?? el.value;
    try {
      const { items } = await api.datasets();
      el.replaceChildren(new Option('MNIST', 'mnist'));
      for (const d of items) el.add(new Option(`${d.name} · ${d.count} images (${d.id})`, d.id));
      el.value = [...el.options].some((o) => o.value === chosen) ? chosen : 'mnist';
    } catch (err) {
      showError(formError, `Could not list datasets: ${err.message}`);
    }
  }

  const zipInput = $('#dataset-file');
  $('#dataset-upload').addEventListener('click', () => zipInput.click());
  zipInput.addEventListener('change', async () => {
    const file = zipInput.files?.[0];
    zipInput.value = '';
    if (!file) return;
    const status = $('#dataset-status');
    status.textContent = `Uploading ${file.name}…`;
    try {
      const info = await api.uploadDataset(file);
      status.textContent = `${info.name}: ${info.count} images.`;
      await refreshDatasets(info.id);
    } catch (err) {
      status.textContent = '';
      showError(formError, `${file.name}: ${err.message}`);
    }
  });

  // --- the job list ---------------------------------------------------------------------------
  const tbody = $('#jobs-body');
  let listTimer = 0;
  let firstList = true;

  async function refreshList() {
    clearTimeout(listTimer);
    try {
      const { items, total } = await api.jobs(20);
      renderList(items, total);
      if (firstList) {
        firstList = false;
        // Show something useful on arrival: the running job, else the latest.
        const pick = items.find((j) => j.state === 'running') ?? items.find((j) => j.state === 'queued') ?? items[0];
        if (pick && !watcher.current()) watcher.watch(pick);
      }
      $('#jobs-error').hidden = true;
    } catch (err) {
      showError($('#jobs-error'), err.message);
    }
    if (isVisible()) listTimer = setTimeout(refreshList, LIST_REFRESH_MS);
  }

  function renderList(items, total) {
    $('#jobs-count').textContent = total > items.length ? `latest ${items.length} of ${total}` : `${total}`;
    if (!items.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty-row' }, 'No jobs yet. Start one with the form.')));
      return;
    }
    tbody.replaceChildren(...items.map((job) => {
      const p = job.progress;
      const fraction = job.state === 'succeeded' ? 1 : p ? (p.epoch - 1 + p.batch / p.batches) / p.epochs : 0;
      const result = job.modelVersion
        ? h('button', { type: 'button', class: 'link', onclick: () => showModel(job.modelVersion) }, `v${job.modelVersion}`, ` · ${formatPercent(job.metrics.testAccuracy)}`)
        : job.error ? h('span', { class: 'error-text', title: job.error }, truncate(job.error, 60)) : '—';
      const watching = watcher.current() === job.id;
      return h('tr', { class: watching ? 'watching' : '', 'data-job': job.id },
        h('td', {}, h('code', { title: job.id }, job.id.slice(0, 8)), h('div', { class: 'muted small' }, describeParams(job.params))),
        h('td', {}, stateBadge(job.state)),
        h('td', {}, h('div', { class: 'mini-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(fraction * 100), 'aria-label': 'progress' }, h('span')),
          h('div', { class: 'muted small' }, p ? `epoch ${p.epoch}/${p.epochs}` : job.state === 'queued' ? 'waiting for a worker' : '')),
        h('td', { class: 'hide-narrow muted' }, formatAgo(job.createdAt)),
        h('td', {}, result),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'small', 'aria-pressed': watching ? 'true' : 'false', onclick: () => watcher.watch(job) }, watching ? 'Watching' : 'Watch'),
          FINISHED.has(job.state) ? null : h('button', { type: 'button', class: 'small danger', onclick: (e) => cancel(job.id, e.currentTarget) }, 'Cancel')),
      );
    }));
    // Widths set through the CSSOM (the page's CSP allows no inline style attributes).
    tbody.querySelectorAll('.mini-progress').forEach((bar) => {
      bar.firstChild.style.width = `${bar.getAttribute('aria-valuenow')}%`;
    });
  }

  async function cancel(id, button) {
    if (button) {
      button.disabled = true;
      button.textContent = 'Cancelling…';
    }
    try {
      await api.cancelJob(id);
    } catch (err) {
      showError($('#jobs-error'), err.message);
    }
    void refreshList();
  }

  showKind();
  return {
    shown() {
      void refreshList();
      watcher.redraw();
    },
  };
}

/** Placeholders say the API's defaults; optional fields show only if this server's job type has them. */
/**
 * Defaults and choices from the job type's request schema: number fields show their default as a
 * placeholder; each select marked data-schema lists the field's choices, the default first as "".
 */
function applySchema(form, props) {
  if (!props) return;
  for (const el of form.querySelectorAll('input[type=number]')) {
    const fallback = props[el.name]?.default;
    el.placeholder = fallback !== undefined ? `${fallback} (default)` : el.name === 'batchSize' ? 'by data size' : '';
  }
  for (const select of form.querySelectorAll('select[data-schema]')) {
    const prop = props[select.name];
    if (!prop) continue;
    const choices = prop.enum ?? (prop.oneOf ?? prop.anyOf ?? []).flatMap((branch) => branch.enum ?? []);
    const chosen = select.value;
    select.replaceChildren(
      new Option(`${prop.default} (default)`, ''),
      ...choices.filter((v) => v !== prop.default).map((v) => new Option(v, v)),
    );
    select.value = choices.includes(chosen) && chosen !== prop.default ? chosen : '';
    if (prop.description) select.closest('label').title = prop.description;
  }
}

function requestFromForm(form, kind) {
  const body = { type: kind };
  const scope = [...form.querySelectorAll('input, select')].filter((el) => !el.matches(':disabled') && el.name && el.name !== 'kind' && !el.closest('#augment'));
  for (const el of scope) {
    if (el.value === '') continue;
    if (el.name === 'baseModel') body.baseModel = el.value === 'latest' ? 'latest' : Number(el.value);
    else body[el.name] = el.type === 'number' ? Number(el.value) : el.value;
  }
  const aug = Object.fromEntries(['rotation', 'shift', 'scaleMin', 'scaleMax'].map((n) => [n, form.elements[n].value]));
  if (Object.values(aug).some((v) => v !== '')) {
    body.augment = {};
    if (aug.rotation !== '') body.augment.rotation = Number(aug.rotation);
    if (aug.shift !== '') body.augment.shift = Number(aug.shift);
    if (aug.scaleMin !== '' || aug.scaleMax !== '') body.augment.scale = [Number(aug.scaleMin || 1), Number(aug.scaleMax || 1)];
  }
  return body;
}

function describeParams(p) {
  if (p.type === 'finetune') return `fine-tune v${p.baseModel} on ${p.dataset === 'mnist' ? 'MNIST' : p.dataset} · ${p.epochs} ep`;
  return `${p.architecture} · ${p.epochs} ep · ${p.limit === 60000 ? '60k' : p.limit} images`;
}

const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

// --- the watched job ------------------------------------------------------------------------

// Batch values are running means that restart every epoch, so each epoch is its own line.
const epochOf = (x) => Math.ceil(x - 1e-9);

function createWatcher({ onFinished, showModel, cancel }) {
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
  const cancelButton = $('#watch-cancel');
  const connection = $('#watch-connection');
  let source = null;
  let job = null;

  cancelButton.addEventListener('click', () => job && cancel(job.id, cancelButton));

  function watch(target) {
    source?.close();
    job = target;
    panel.dataset.state = target.state;
    panel.classList.remove('idle');
    loss.reset(target.params.epochs);
    accuracy.reset(target.params.epochs);
    render();
    document.querySelectorAll('#jobs-body tr').forEach((tr) => {
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
    const on = (name, fn) => mine.addEventListener(name, (e) => mine === source && fn(JSON.parse(e.data)));
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

  function addBatch(p) {
    const x = p.epoch - 1 + p.batch / p.batches;
    loss.add('batch', x, p.loss);
    accuracy.add('batch', x, p.accuracy);
  }

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
    cancelButton.hidden = FINISHED.has(job.state);
    if (FINISHED.has(job.state)) {
      cancelButton.disabled = false;
      cancelButton.textContent = 'Cancel job';
    } else if (job.cancelRequested) {
      cancelButton.disabled = true;
      cancelButton.textContent = 'Cancelling…';
    }
    result.replaceChildren(...resultLine(job, showModel));
    result.hidden = !FINISHED.has(job.state);
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

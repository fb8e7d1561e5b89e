// The new-job form: train or fine-tune, presets, the choices and defaults of the API's own request
// schema (read from its OpenAPI document), and uploading a dataset to fine-tune on.

import { api } from './api.js';
import { $, formatPercent, showError } from './dom.js';

// Only what differs from the API's defaults (see README, "Training recipe").
const PRESETS = {
  quick: { kind: 'train', epochs: 1, limit: 3000 },
  full: { kind: 'train' },
  // README, "Best accuracy": the resnet with augmentation.
  best: { kind: 'train', architecture: 'resnet', epochs: 20, rotation: 10, shift: 2, scaleMin: 0.9, scaleMax: 1.1 },
};

/**
 * @param {object} deps
 * @param {(job: import('./api.js').Job) => void} deps.onCreated a job was queued
 * @param {(fn: (list: import('./api.js').ModelList) => void) => void} deps.onModelsChanged
 */
export function setupTrainForm({ onCreated, onModelsChanged }) {
  /** @type {HTMLFormElement} */
  const form = $('#train-form');
  const formError = $('#train-error');
  /** @type {HTMLButtonElement} */
  const submit = $('#train-submit');
  /** @type {HTMLFieldSetElement} */
  const trainOnly = $('#train-only');
  /** @type {HTMLFieldSetElement} */
  const finetuneOnly = $('#finetune-only');

  /** @type {() => RadioNodeList} */
  const kindRadios = () => control(form, 'kind');
  const kind = () => kindRadios().value;
  /** @type {Record<string, Record<string, any> | undefined>} */
  let schemas = {}; // job type → its request schema's properties, from the API's OpenAPI document
  function showKind() {
    const k = kind();
    trainOnly.disabled = trainOnly.hidden = k !== 'train';
    finetuneOnly.disabled = finetuneOnly.hidden = k !== 'finetune';
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
  for (const radio of kindRadios()) radio.addEventListener('change', showKind);

  const presetButtons = /** @type {NodeListOf<HTMLButtonElement>} */ (form.querySelectorAll('[data-preset]'));
  for (const button of presetButtons) {
    button.addEventListener('click', () => {
      const preset = PRESETS[button.dataset.preset];
      for (const input of numberInputs(form)) input.value = '';
      kindRadios().value = preset.kind;
      for (const select of schemaSelects(form)) select.value = '';
      for (const [name, value] of Object.entries(preset)) if (name !== 'kind') control(form, name).value = String(value);
      showKind();
    });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.hidden = true;
    submit.disabled = true;
    try {
      onCreated(await api.createJob(requestFromForm(form, kind())));
    } catch (err) {
      showError(formError, err.message);
    } finally {
      submit.disabled = false;
    }
  });

  onModelsChanged((list) => {
    /** @type {HTMLSelectElement} */
    const select = control(form, 'baseModel');
    const chosen = select.value;
    select.replaceChildren(new Option(list.items.length ? `latest (v${list.items[0].version})` : 'latest (none yet)', 'latest'));
    for (const m of list.items) select.add(new Option(`v${m.version} · ${m.architecture} · ${formatPercent(m.testAccuracy)}`, String(m.version)));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : 'latest';
  });

  /** @param {string} [select] the dataset id to choose; else the current choice stays */
  async function refreshDatasets(select) {
    /** @type {HTMLSelectElement} */
    const el = control(form, 'dataset');
    const chosen = select ?? el.value;
    try {
      const [{ items }, corrections] = await Promise.all([api.datasets(), api.feedbackCount().catch(() => ({ total: 0 }))]);
      el.replaceChildren(new Option('MNIST', 'mnist'), new Option(`Your corrections · ${corrections.total}`, 'feedback'));
      for (const d of items) el.add(new Option(`${d.name} · ${d.count} images (${d.id})`, d.id));
      el.value = [...el.options].some((o) => o.value === chosen) ? chosen : 'mnist';
    } catch (err) {
      showError(formError, `Could not list datasets: ${err.message}`);
    }
  }

  /** @type {HTMLInputElement} */
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

  showKind();
}

/**
 * `form.elements[name]`, typed as the caller says (the DOM's types only know an Element or a RadioNodeList).
 * @template {HTMLInputElement | HTMLSelectElement | RadioNodeList} [T=HTMLInputElement | HTMLSelectElement]
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {T}
 */
function control(form, name) {
  return /** @type {T} */ (form.elements.namedItem(name));
}

/** @param {HTMLFormElement} form */
const numberInputs = (form) => /** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll('input[type=number]'));
/** @param {HTMLFormElement} form */
const schemaSelects = (form) => /** @type {NodeListOf<HTMLSelectElement>} */ (form.querySelectorAll('select[data-schema]'));

/**
 * Defaults and choices from the job type's request schema: number fields show their default as a
 * placeholder; each select marked data-schema lists the field's choices, the default first as "".
 * @param {HTMLFormElement} form
 * @param {Record<string, any> | undefined} props the schema's properties (JSON Schema, from the API)
 */
function applySchema(form, props) {
  if (!props) return;
  for (const el of numberInputs(form)) {
    const fallback = props[el.name]?.default;
    el.placeholder = fallback !== undefined ? `${fallback} (default)` : el.name === 'batchSize' ? 'by data size' : '';
  }
  for (const select of schemaSelects(form)) {
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

/**
 * The POST /v1/jobs body: the fields someone filled in, in the shape of the API's request schema.
 * @param {HTMLFormElement} form
 * @param {string} kind the job type
 */
function requestFromForm(form, kind) {
  const body = { type: kind };
  const controls = /** @type {NodeListOf<HTMLInputElement | HTMLSelectElement>} */ (form.querySelectorAll('input, select'));
  const scope = [...controls].filter((el) => !el.matches(':disabled') && el.name && el.name !== 'kind' && !el.closest('#augment'));
  for (const el of scope) {
    if (el.value === '') continue;
    if (el.name === 'baseModel') body.baseModel = el.value === 'latest' ? 'latest' : Number(el.value);
    else body[el.name] = el.type === 'number' ? Number(el.value) : el.value;
  }
  const aug = Object.fromEntries(['rotation', 'shift', 'scaleMin', 'scaleMax'].map((n) => [n, control(form, n).value]));
  if (Object.values(aug).some((v) => v !== '')) {
    body.augment = {};
    if (aug.rotation !== '') body.augment.rotation = Number(aug.rotation);
    if (aug.shift !== '') body.augment.shift = Number(aug.shift);
    if (aug.scaleMin !== '' || aug.scaleMax !== '') body.augment.scale = [Number(aug.scaleMin || 1), Number(aug.scaleMax || 1)];
  }
  return body;
}


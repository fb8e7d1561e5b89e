// Entry point: tabs (with the URL hash, so a tab can be linked and Back works), the shared model
// list that every tab listens to, and feature detection for pinning.

import { api, apiKey } from './api.js';
import { $ } from './dom.js';
import { setupDraw } from './draw.js';
import { setupModels } from './models.js';
import { setupTrain } from './train.js';

const TABS = ['draw', 'train', 'models'];
const MODELS_REFRESH_MS = 15_000;

/** @typedef {(list: import('./api.js').ModelList) => unknown} ModelsListener */
/** @type {ModelsListener[]} */
const modelListeners = [];
/** @param {ModelsListener} fn called with every fresh model list */
const onModelsChanged = (fn) => modelListeners.push(fn);
let refreshing = null;
async function modelsChanged() {
  // Calls during a refresh share it; the list is small and every tab reads the same one.
  refreshing ??= (async () => {
    try {
      const list = await api.models();
      $('#served-pill').textContent = list.servedVersion ? `serving v${list.servedVersion}` : 'no model yet';
      $('#served-pill').classList.toggle('none', !list.servedVersion);
      await Promise.all(modelListeners.map((fn) => fn(list)));
    } catch (err) {
      $('#served-pill').textContent = err.status === 0 ? 'offline' : err.status === 401 || err.status === 403 ? 'API key needed' : 'models unavailable';
      $('#served-pill').classList.add('none');
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

let current = null;
const views = {};

function showTab(name, { focus = false } = {}) {
  if (!TABS.includes(name)) name = 'draw';
  current = name;
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const selected = tab === name;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${tab}`).hidden = !selected;
  }
  if (focus) $(`#tab-${name}`).focus();
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  views[name]?.shown?.();
  if (name === 'models') void modelsChanged(); // fresh numbers when someone comes to compare
}

for (const tab of TABS) {
  const button = $(`#tab-${tab}`);
  button.addEventListener('click', () => showTab(tab));
  // Arrow keys move between tabs, as in the WAI-ARIA tabs pattern.
  button.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -TABS.length, End: TABS.length }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const index = Math.min(TABS.length - 1, Math.max(0, TABS.indexOf(tab) + step));
    showTab(TABS[index], { focus: true });
  });
}
window.addEventListener('hashchange', () => showTab(location.hash.slice(1)));

const showModel = (version) => {
  showTab('models');
  void views.models.show(version);
};

// The API key field: hidden in a menu, opened when the server answers 401/403.
function setupKeyMenu() {
  /** @type {HTMLDetailsElement} */
  const menu = $('#key-menu');
  /** @type {HTMLInputElement} */
  const input = $('#api-key');
  const show = () => menu.classList.toggle('set', Boolean(apiKey.get()));
  let prompted = false; // once per key, not on every refresh that fails
  const save = (key) => {
    apiKey.set(key.trim());
    prompted = false;
    input.value = '';
    menu.open = false;
    show();
    void modelsChanged(); // the lists that needed the key
  };
  $('#key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    save(input.value);
  });
  $('#key-forget').addEventListener('click', () => save(''));
  window.addEventListener('api-key-needed', () => {
    if (prompted || menu.open) return;
    prompted = true;
    menu.open = true;
    input.focus();
  });
  show();
}

setupKeyMenu();
setupDraw({ onModelsChanged });
views.train = setupTrain({ isVisible: () => current === 'train' && !document.hidden, onModelsChanged, modelsChanged, showModel });
views.models = setupModels({ onModelsChanged, modelsChanged });

showTab(location.hash.slice(1) || 'draw');
void modelsChanged();
setInterval(() => !document.hidden && modelsChanged(), MODELS_REFRESH_MS);
document.addEventListener('visibilitychange', () => !document.hidden && current === 'train' && views.train.shown());

// The job list: the latest jobs with their state and progress, refreshed while the tab shows;
// choose one to watch, or cancel it.

import { api, FINISHED_STATES } from './api.js';
import { $, formatAgo, formatPercent, h, showError, stateBadge } from './dom.js';

const LIST_REFRESH_MS = 3000;

/**
 * @param {object} deps
 * @param {() => boolean} deps.isVisible
 * @param {{ watch: (job: import('./api.js').Job) => void, current: () => string | undefined }} deps.watcher
 * @param {(version: number) => void} deps.showModel
 */
export function setupJobList({ isVisible, watcher, showModel }) {
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

  /**
   * @param {import('./api.js').Job[]} items
   * @param {number} total
   */
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
          FINISHED_STATES.has(job.state) ? null : h('button', { type: 'button', class: 'small danger', onclick: (e) => cancel(job.id, e.currentTarget) }, 'Cancel')),
      );
    }));
    // Widths set through the CSSOM (the page's CSP allows no inline style attributes).
    tbody.querySelectorAll('.mini-progress').forEach((bar) => {
      /** @type {HTMLElement} */ (bar.firstChild).style.width = `${bar.getAttribute('aria-valuenow')}%`;
    });
  }

  /**
   * @param {string} id
   * @param {HTMLButtonElement} [button] the button that asked, disabled while the request runs
   */
  async function cancel(id, button) {
    const label = button?.textContent;
    if (button) {
      button.disabled = true;
      button.textContent = 'Cancelling…';
    }
    try {
      await api.cancelJob(id);
    } catch (err) {
      showError($('#jobs-error'), err.message);
      if (button) {
        button.disabled = false; // it can be tried again
        button.textContent = label;
      }
    }
    void refreshList();
  }

  return { refresh: refreshList, cancel };
}

/**
 * A job's parameters in a few words, for lists and titles.
 * @param {import('./api.js').Job['params']} p
 */
export function describeParams(p) {
  if (p.type === 'finetune') return `fine-tune v${p.baseModel} on ${p.dataset === 'mnist' ? 'MNIST' : p.dataset} · ${p.epochs} ep`;
  return `${p.architecture} · ${p.epochs} ep · ${p.limit === 60000 ? '60k' : p.limit} images`;
}

/** @type {(s: string, n: number) => string} */
const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);


// DOM helpers. Text always goes in as text (never as HTML), so values from the API cannot inject markup.

/**
 * The element `selector` finds; a missing one is a bug in the page, so it throws.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {T}
 */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return /** @type {T} */ (el); // the caller says which kind of element the selector finds
}

/** @typedef {Node | string | number | null | undefined | false} Child what `h` takes as a child */

/**
 * `h('td', {class: 'num'}, 'text', child)`: an element with attributes and text or element children.
 * `on…` attributes are event listeners; `undefined`, `null` and `false` leave an attribute or child out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === 'class') el.className = /** @type {string} */ (value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** @type {(p: number, digits?: number) => string} */
export const formatPercent = (p, digits = 1) => `${(p * 100).toFixed(digits)}%`;

/** @type {(n: number) => string} */
export const formatNumber = (n) => new Intl.NumberFormat('en').format(n);

/** @param {string} iso a date as the API writes it */
export function formatAgo(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** @param {number} ms */
export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  return s < 90 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/**
 * @param {HTMLElement} el
 * @param {string} message
 */
export function showError(el, message) {
  el.textContent = message;
  el.hidden = false;
}

/** @param {import('./api.js').JobState} state */
export function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, state);
}

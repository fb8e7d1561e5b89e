// Train tab: the new-job form, the job list, and the job being watched, wired together.

import { setupJobList } from './job-list.js';
import { createJobWatcher } from './job-watcher.js';
import { setupTrainForm } from './train-form.js';

/**
 * @param {object} deps
 * @param {() => boolean} deps.isVisible
 * @param {(fn: (list: import('./api.js').ModelList) => void) => void} deps.onModelsChanged
 * @param {() => Promise<unknown>} deps.modelsChanged
 * @param {(version: number) => void} deps.showModel
 */
export function setupTrain({ isVisible, onModelsChanged, modelsChanged, showModel }) {
  /** @type {ReturnType<typeof setupJobList>} */
  let list;
  const watcher = createJobWatcher({
    onFinished: () => {
      void list.refresh();
      void modelsChanged();
      // The API switches to a new version a moment after the job ends (after loading and warming it up).
      setTimeout(modelsChanged, 2000);
    },
    showModel,
    cancel: (id, button) => list.cancel(id, button),
  });
  list = setupJobList({ isVisible, watcher, showModel });
  setupTrainForm({
    onCreated: (job) => {
      watcher.watch(job);
      void list.refresh();
    },
    onModelsChanged,
  });
  return {
    shown() {
      void list.refresh();
      watcher.redraw();
    },
  };
}

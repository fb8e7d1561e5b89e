import { parentPort } from 'node:worker_threads';
import type { DecodeTask } from '../../src/serving/decode-messages.ts';

// The real decode thread, except that it dies (as an out-of-memory or a native fault would end
// it) on a task whose first PNG is named 'crash'. Registered first, so it runs before the real one.
parentPort!.on('message', (task: DecodeTask) => {
  if (task.type === 'pngs' && task.names[0] === 'crash') process.exit(70);
});
await import('../../src/serving/decode-worker.ts');

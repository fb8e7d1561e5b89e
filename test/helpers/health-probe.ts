import { Worker } from 'node:worker_threads';

/**
 * A client on a thread of its own that asks `url` every 20 ms until stopped, and answers with each
 * request's time to a 200, in ms (Infinity for any other answer or none). Its own thread keeps its
 * clock running while the process under test, or a hostile client in this thread building and
 * sending megabytes, holds the main event loop. `ready` resolves once a first answer came back, so
 * the connection is warm before anything is measured.
 */
export function healthProbe(url: string): { ready: Promise<void>; stop: () => Promise<number[]> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const latencies = [];
    let running = true;
    parentPort.once('message', () => { running = false; });
    const ask = async () => {
      const asked = performance.now();
      const ok = await fetch(workerData.url).then(async (r) => (await r.arrayBuffer(), r.status === 200), () => false);
      return ok ? performance.now() - asked : Infinity;
    };
    (async () => {
      await ask();
      parentPort.postMessage('ready');
      do {
        latencies.push(await ask());
        await new Promise((r) => setTimeout(r, 20));
      } while (running);
      parentPort.postMessage(latencies);
    })();`;
  const worker = new Worker(code, { eval: true, workerData: { url } });
  const ready = new Promise<void>((resolve) => worker.once('message', () => resolve()));
  return {
    ready,
    stop: async () => {
      await ready;
      const answer = new Promise<number[]>((resolve) => worker.once('message', resolve));
      worker.postMessage('stop');
      const latencies = await answer;
      await worker.terminate();
      return latencies;
    },
  };
}

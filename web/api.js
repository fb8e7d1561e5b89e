// Thin client for the service's HTTP API. URLs are relative to the page, so the UI also works
// behind a reverse proxy that mounts the service under a path.

/** @typedef {'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'} JobState */
/** @typedef {{ epoch: number, epochs: number, batch: number, batches: number, loss: number, accuracy: number }} BatchProgress */
/** @typedef {{ epoch: number, loss: number, accuracy: number, valLoss?: number, valAccuracy?: number }} EpochStats */
/**
 * A job as GET /v1/jobs/{id} gives it (the API's `Job` schema).
 * @typedef {{ id: string, type: 'train' | 'finetune', state: JobState, params: Record<string, any>, progress: BatchProgress | null,
 *   history: EpochStats[], modelVersion?: number, metrics?: { testAccuracy: number, testLoss: number }, error?: string,
 *   cancelRequested?: boolean, createdAt: string, startedAt?: string, finishedAt?: string }} Job
 */
/**
 * GET /v1/models.
 * @typedef {{ servedVersion: number | null, pinnedVersion: number | null, servingPolicy: 'best' | 'newest' | 'manual',
 *   canary?: { version: number, fraction: number } | null,
 *   items: { version: number, createdAt: string, architecture: string, jobId: string | null, testAccuracy: number, served: boolean, servingReason: string }[] }} ModelList
 */

/** The states a job does not leave. */
export const FINISHED_STATES = new Set(['succeeded', 'failed', 'cancelled']);

/** An answer other than 2xx; `status` 0 when the service did not answer at all. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {number | null} [retryAfter] seconds, when the answer said the same request works later
   */
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// The API key (when the server has API_KEYS) is kept in this browser only and sent with every call.
const KEY_STORAGE = 'mnist-service.api-key';
export const apiKey = {
  get: () => {
    try {
      return localStorage.getItem(KEY_STORAGE) ?? '';
    } catch {
      return ''; // storage blocked: the page still works where the server has auth off
    }
  },
  /** @param {string} key an empty one forgets the key */
  set: (key) => {
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage blocked: nothing to keep
    }
  },
};

/** @param {RequestInit & { headers?: Record<string, string> }} init */
function withKey(init) {
  const key = apiKey.get();
  return key ? { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } } : init;
}

/**
 * @param {string} path relative to the page
 * @param {RequestInit & { headers?: Record<string, string> }} [init]
 * @returns {Promise<any>} the JSON body (null when the answer has none)
 */
async function request(path, init = {}) {
  let res;
  try {
    res = await fetch(path, withKey(init));
  } catch {
    throw new ApiError(0, 'The service does not answer. Is it running?');
  }
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('application/json') ? await res.json().catch(() => null) : null;
  // 401/403: the page offers its key field (app.js listens).
  if (res.status === 401 || res.status === 403) window.dispatchEvent(new CustomEvent('api-key-needed', { detail: { status: res.status } }));
  if (!res.ok) {
    const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
    throw new ApiError(res.status, body?.message ?? `${res.status} ${res.statusText}`, Number.isFinite(retryAfter) ? retryAfter : null);
  }
  return body;
}

/**
 * EventSource cannot send headers, so with a key the stream is read with fetch instead. Same events,
 * `readyState` and reconnect-after-a-pause as EventSource, just what job-watcher.js uses.
 */
class KeyedEventSource extends EventTarget {
  static RETRY_MS = 3000;

  /** @param {string} url */
  constructor(url) {
    super();
    /** @type {number} */
    this.readyState = EventSource.CONNECTING;
    /** @type {AbortController | null} */
    this.controller = null;
    void this.connect(url);
  }

  /** @param {string} url */
  async connect(url) {
    while (this.readyState !== EventSource.CLOSED) {
      this.controller = new AbortController();
      try {
        const res = await fetch(url, withKey({ headers: { accept: 'text/event-stream' }, signal: this.controller.signal }));
        if (!res.ok || !res.body) {
          if (res.status === 401 || res.status === 403) window.dispatchEvent(new CustomEvent('api-key-needed', { detail: { status: res.status } }));
          this.readyState = EventSource.CLOSED; // as EventSource does on a non-200 answer
          this.dispatchEvent(new Event('error'));
          return;
        }
        this.readyState = EventSource.OPEN;
        this.dispatchEvent(new Event('open'));
        await this.read(res.body.pipeThrough(new TextDecoderStream()).getReader());
      } catch {
        // network error or close(): reconnect below unless closed
      }
      if (this.readyState === EventSource.CLOSED) return;
      this.readyState = EventSource.CONNECTING;
      this.dispatchEvent(new Event('error'));
      await new Promise((r) => setTimeout(r, KeyedEventSource.RETRY_MS));
    }
  }

  /** @param {ReadableStreamDefaultReader<string>} reader */
  async read(reader) {
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length > 0 && this.readyState !== EventSource.CLOSED) this.dispatchEvent(new MessageEvent(event, { data: data.join('\n') }));
      }
    }
  }

  close() {
    this.readyState = EventSource.CLOSED;
    this.controller?.abort();
  }
}

/** @type {(method: string, path: string, payload: unknown) => Promise<any>} */
const sendJson = (method, path, payload) =>
  request(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });

export const api = {
  predict: (png, version) => request(`v1/predict${version ? `?version=${version}` : ''}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }),
  /** @type {(correction: { predictionId?: string, image?: string, label: number }) => Promise<{ items: { id: string, status: string }[], total: number }>} */
  feedback: (correction) => sendJson('POST', 'v1/feedback', correction),
  /** @type {() => Promise<{ total: number }>} */
  feedbackCount: () => request('v1/feedback?limit=1'),
  /** @type {() => Promise<ModelList>} */
  models: () => request('v1/models'),
  model: (version) => request(`v1/models/${version}`),
  modelJson: (version) => request(`v1/models/${version}/model.json`),
  /** @type {(limit?: number) => Promise<{ items: Job[], total: number }>} */
  jobs: (limit = 20) => request(`v1/jobs?limit=${limit}`),
  /** @type {(id: string) => Promise<Job>} */
  job: (id) => request(`v1/jobs/${encodeURIComponent(id)}`),
  /** @type {(params: Record<string, unknown>) => Promise<Job>} */
  createJob: (params) => sendJson('POST', 'v1/jobs', params),
  cancelJob: (id) => request(`v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  /** @param {string} id */
  jobEventsUrl: (id) => `v1/jobs/${encodeURIComponent(id)}/events`,
  /** @param {string} id */
  jobEvents: (id) => {
    const url = api.jobEventsUrl(id);
    return apiKey.get() ? new KeyedEventSource(url) : new EventSource(url);
  },
  datasets: () => request('v1/datasets'),
  uploadDataset: (zip) => request('v1/datasets', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: zip }),
  pin: (version) => sendJson('PUT', 'v1/models/serving', { version }),
  unpin: () => request('v1/models/serving', { method: 'DELETE' }),
  promoteCanary: () => request('v1/models/serving/canary/promote', { method: 'POST' }),
  endCanary: () => request('v1/models/serving/canary', { method: 'DELETE' }),
  spec: () => (specRequest ??= request('openapi.json').catch((err) => {
    specRequest = undefined; // try again next time
    throw err;
  })),
};

/** @type {Promise<any> | undefined} */
let specRequest; // the OpenAPI document, arbitrary JSON

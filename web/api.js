// Thin client for the service's HTTP API. URLs are relative to the page, so the UI also works
// behind a reverse proxy that mounts the service under a path.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(path, init = {}) {
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'The service does not answer. Is it running?');
  }
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('application/json') ? await res.json().catch(() => null) : null;
  if (!res.ok) throw new ApiError(res.status, body?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

const sendJson = (method, path, payload) =>
  request(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });

export const api = {
  predict: (png, version) => request(`v1/predict${version ? `?version=${version}` : ''}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }),
  models: () => request('v1/models'),
  model: (version) => request(`v1/models/${version}`),
  modelJson: (version) => request(`v1/models/${version}/model.json`),
  jobs: (limit = 20) => request(`v1/jobs?limit=${limit}`),
  job: (id) => request(`v1/jobs/${encodeURIComponent(id)}`),
  createJob: (params) => sendJson('POST', 'v1/jobs', params),
  cancelJob: (id) => request(`v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  jobEventsUrl: (id) => `v1/jobs/${encodeURIComponent(id)}/events`,
  datasets: () => request('v1/datasets'),
  uploadDataset: (zip) => request('v1/datasets', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: zip }),
  servingStatus: () => request('v1/models/serving'),
  pin: (version) => sendJson('PUT', 'v1/models/serving', { version }),
  unpin: () => request('v1/models/serving', { method: 'DELETE' }),
  spec: () => (specRequest ??= request('openapi.json').catch((err) => {
    specRequest = undefined; // try again next time
    throw err;
  })),
};

let specRequest;

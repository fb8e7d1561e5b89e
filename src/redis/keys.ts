/**
 * The service's own Redis keys and channels (BullMQ keeps its queue under the same prefix): one
 * place, shared by the API replicas and the workers.
 */
export function redisKeys(prefix: string) {
  return {
    /** Sorted set of every job id scored by creation time, for newest-first listing across states. */
    jobIndex: `${prefix}:jobs:index`,
    /** Set of job ids whose cancellation was requested. */
    cancelled: `${prefix}:jobs:cancelled`,
    /** Pub/sub: job ids to cancel; every worker listens, the one running the job stops it. */
    cancelChannel: `${prefix}:jobs:cancel`,
    /** Pub/sub: `{"version": N}` when a model version has been written, `{"pinned": N|null}` when the pin changes. */
    modelEvents: `${prefix}:models:events`,
    /** The pinned (served) model version, shared by every API replica; absent = serve the newest. */
    modelPin: `${prefix}:models:pinned`,
    /** The canary `{"version": M, "fraction": f}`, shared by every API replica; absent = no canary. */
    modelCanary: `${prefix}:models:canary`,
    /** Stream of recently predicted images (784 bytes each), by prediction id, for corrections. */
    predictions: `${prefix}:predictions`,
    /** Corrections (POST /v1/feedback): hashes of items and pixels, and a sorted set by time. */
    feedback: { items: `${prefix}:feedback:items`, pixels: `${prefix}:feedback:pixels`, byTime: `${prefix}:feedback:by-time` },
    /** FEEDBACK_FINETUNE_EVERY: corrections since the last automatic fine-tune, and that job's id while it may run. */
    feedbackTrigger: { counter: `${prefix}:feedback:since-tune`, job: `${prefix}:feedback:tune-job` },
    /** Hash: API replica id → `{"version": N, "at": ms}`, the version each replica serves, so retention never deletes it. */
    modelServed: `${prefix}:models:served`,
    /** `<key>:<version>`: the worker exporting that older version to ONNX at start-up (expires), so workers split the backfill. */
    onnxBackfill: `${prefix}:models:onnx-backfill`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { JobNotFoundError } from '../../queue/job-service.ts';
import { errorResponses } from '../../schemas/common.ts';
import { JobParams } from '../../schemas/jobs.ts';
import { JobEventStream } from '../job-event-stream.ts';
import { ServiceError } from '../../errors.ts';

/** Too many open streams: each holds a socket and polls Redis, so past the cap a client waits (Retry-After: 10) and retries. */
export class TooManyStreamsError extends ServiceError {
  constructor(max: number) {
    super('unavailable', `this API instance already streams ${max} job event streams (MAX_EVENT_STREAMS); retry later or poll GET /v1/jobs/{id}`, 10);
  }
}

export const jobEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const streams = new Set<JobEventStream>();
  // Slots taken: open streams, and requests between the check and their stream's start. Taken
  // before the first await, or a burst would pass the check together and all open streams.
  let slots = 0;
  // Open streams would keep `close()` waiting for ever; drop them first, then stop listening.
  app.addHook('preClose', async () => {
    for (const s of streams) s.disconnect();
  });

  app.get('/v1/jobs/:id/events', {
    schema: {
      tags: ['jobs'],
      summary: "A job's progress as server-sent events, until it finishes",
      description:
        'A `text/event-stream` (use `EventSource`). Events, each with JSON `data`: `job` first (the whole job, as GET /v1/jobs/{id}); `progress` for each batch the worker reports ' +
        '(epoch, batch, running loss and accuracy of the epoch; at most every 0.5 s); `epoch` when an epoch ends (its loss, accuracy and validation metrics); ' +
        '`state` with the whole job when its state changes; and `end` once it has succeeded, failed or been cancelled, after which the server closes the stream. ' +
        'A reconnecting client gets a fresh `job` snapshot.',
      params: JobParams,
      response: {
        200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string', description: 'event: <job|progress|epoch|state|end>\\ndata: <JSON>' } } } },
        ...errorResponses(404, 503),
      },
    },
  }, async (req, reply) => {
    const { jobs, config, jobEvents } = app.services;
    if (slots >= config.MAX_EVENT_STREAMS) throw new TooManyStreamsError(config.MAX_EVENT_STREAMS);
    slots++;
    let held = true;
    const release = () => {
      if (held) slots--;
      held = false;
    };
    try {
      const first = await jobs.get(req.params.id);
      if (!first) throw new JobNotFoundError(req.params.id);
      await jobEvents.ready();
      // Gone while we looked the job up: its close has passed, and a stream would never see it.
      if (req.raw.socket?.destroyed) {
        release();
        return reply.hijack();
      }
      reply.hijack();
      const stream = new JobEventStream(reply.raw, first.id, jobs, () => {
        streams.delete(stream);
        release();
      }, req.id);
      streams.add(stream);
      stream.start(first, jobEvents);
    } catch (err) {
      release();
      throw err;
    }
  });
};

import type { FastifyInstance, FastifySerializerCompiler } from 'fastify';
import { ResponseSerializationError, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { MeterService } from '../meters/service.ts';
import { stringifyJson } from './json.ts';
import type { EventStore, StoredEvent } from './store.ts';

const DEFAULT_WINDOW_MS = 72 * 3600 * 1000; // OpenMeter lists the last 72 hours by default

const dateTime = z.iso.datetime({ offset: true });

export const ListEventsQuery = z.object({
  from: dateTime.optional().describe('Start of event time, inclusive (default: 72 hours ago)'),
  to: dateTime.optional().describe('End of event time, inclusive'),
  ingestedAtFrom: dateTime.optional(),
  ingestedAtTo: dateTime.optional(),
  subject: z.string().min(1).optional().describe('Partial match on subject'),
  type: z.string().min(1).optional(),
  id: z.string().min(1).optional().describe('Partial match on id'),
  limit: z.coerce.number().int().min(1).max(100).default(100),
});

export const IngestedEvent = z
  .object({
    event: z.object({
      id: z.string(),
      source: z.string(),
      specversion: z.string(),
      type: z.string(),
      subject: z.string(),
      time: z.string(),
      datacontenttype: z.string().optional(),
      dataschema: z.string().optional(),
      data: z.record(z.string(), z.unknown()).nullable().optional(),
    }),
    validationError: z.string().optional(),
    ingestedAt: z.string(),
    storedAt: z.string(),
  })
  .meta({ id: 'IngestedEvent' });

const DeadLetterItem = z.object({
  reason: z.string(),
  position: z.string(),
  payload: z.string(),
  receivedAt: z.string(),
});

/**
 * The zod type provider's serializer, but writing each number of `data` as the literal the client
 * sent (JSON.stringify would write a LosslessNumber as an object).
 */
const losslessSerializer: FastifySerializerCompiler<unknown> =
  ({ schema, method, url }) =>
  (data) => {
    const result = z.safeEncode(schema as z.ZodType, data);
    if (!result.success) throw new ResponseSerializationError(method, url, { cause: result.error });
    return stringifyJson(result.data);
  };

const iso = (ms: number) => new Date(ms).toISOString();

export function toApiEvent(stored: StoredEvent, validationError?: string): z.infer<typeof IngestedEvent> {
  return {
    event: {
      id: stored.id,
      source: stored.source,
      specversion: '1.0',
      type: stored.type,
      subject: stored.subject,
      time: iso(stored.time),
      ...(stored.datacontenttype ? { datacontenttype: stored.datacontenttype } : {}),
      ...(stored.dataschema ? { dataschema: stored.dataschema } : {}),
      data: stored.data,
    },
    ...(validationError ? { validationError } : {}),
    ingestedAt: iso(stored.ingestedAt),
    storedAt: iso(stored.storedAt),
  };
}

export function eventRoutes(store: EventStore, meters: Pick<MeterService, 'validationErrors'>) {
  return async (app: FastifyInstance) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get(
      '/api/v1/events',
      {
        schema: {
          operationId: 'listEvents',
          summary: 'List ingested events, newest first',
          tags: ['Events'],
          querystring: ListEventsQuery,
          response: { 200: z.array(IngestedEvent) },
        },
        serializerCompiler: losslessSerializer,
      },
      async (request) => {
        const q = request.query;
        const ms = (text: string | undefined) => (text === undefined ? undefined : Date.parse(text));
        const events = await store.listEvents({
          namespace: request.namespace,
          from: ms(q.from) ?? Date.now() - DEFAULT_WINDOW_MS,
          to: ms(q.to) ?? Number.MAX_SAFE_INTEGER,
          ingestedFrom: ms(q.ingestedAtFrom),
          ingestedTo: ms(q.ingestedAtTo),
          subject: q.subject,
          type: q.type,
          id: q.id,
          limit: q.limit,
        });
        const errors = await meters.validationErrors(request.namespace, events);
        return events.map((event) => toApiEvent(event, errors.get(event)));
      },
    );

    typed.get(
      '/api/v1/dead-letters',
      {
        schema: {
          operationId: 'listDeadLetters',
          summary: 'Log records the sink could not store, newest first',
          tags: ['Events'],
          querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
          response: { 200: z.array(DeadLetterItem) },
        },
      },
      async (request) => {
        const letters = await store.listDeadLetters(request.namespace, request.query.limit);
        return letters.map((l) => ({ ...l, receivedAt: iso(l.receivedAt) }));
      },
    );
  };
}

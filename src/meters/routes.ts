import { stringify } from 'csv-stringify/sync';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiMeter, MeterCreate, MeterUpdate, toApiMeter, WindowSize } from './meter.ts';
import type { MeterService, UsageQueryInput, UsageResult } from './service.ts';

/** A query-string parameter that may be repeated (?subject=a&subject=b) or given once. */
const repeated = z.preprocess(
  (v) => (v === undefined ? undefined : [v].flat()),
  z.array(z.string()).max(100).optional(),
);

const QueryString = z.object({
  from: z.string().optional(),
  to: z.string().optional(),
  windowSize: WindowSize.optional(),
  windowTimeZone: z.string().optional(),
  subject: repeated,
  groupBy: repeated,
  clientId: z.string().max(36).optional(),
});

const QueryBody = z
  .object({
    from: z.string().optional(),
    to: z.string().optional(),
    windowSize: WindowSize.optional(),
    windowTimeZone: z.string().optional(),
    subject: z.array(z.string()).max(100).optional(),
    groupBy: z.array(z.string()).max(100).optional(),
    filterGroupBy: z.record(z.string(), z.array(z.string())).optional(),
  })
  .meta({ id: 'MeterQueryRequest' });

const QueryResult = z
  .object({
    from: z.string().optional(),
    to: z.string().optional(),
    windowSize: WindowSize.optional(),
    data: z.array(
      z.object({
        value: z.number(),
        windowStart: z.string(),
        windowEnd: z.string(),
        subject: z.string().nullable(),
        groupBy: z.record(z.string(), z.string().nullable()),
      }),
    ),
  })
  .meta({ id: 'MeterQueryResult' });

const TimeRange = z.object({ from: z.string().optional(), to: z.string().optional() });

const MeterParams = z.object({ meterIdOrSlug: z.string().min(1).max(64) });

/** OpenMeter's deep-object filter: ?filterGroupBy[model]=gpt-4o (repeatable). */
function filterGroupByFromQuery(query: Record<string, unknown>): Record<string, string[]> | undefined {
  // fromEntries defines own keys: assigning filters['__proto__'] would set the prototype instead.
  const filters = Object.fromEntries(
    Object.entries(query).flatMap(([name, value]) => {
      const key = /^filterGroupBy\[(.+)\]$/.exec(name)?.[1];
      return key === undefined ? [] : [[key, [value].flat().map(String)]];
    }),
  );
  return Object.keys(filters).length > 0 ? filters : undefined;
}

function sendUsage(request: FastifyRequest, reply: FastifyReply, result: UsageResult) {
  if (!(request.headers.accept ?? '').includes('text/csv')) return result;
  const keys = [...new Set(result.data.flatMap((row) => Object.keys(row.groupBy)))];
  const csv = stringify(
    result.data.map((row) => [
      row.windowStart,
      row.windowEnd,
      row.subject ?? '',
      ...keys.map((k) => row.groupBy[k] ?? ''),
      row.value,
    ]),
    { header: true, columns: ['windowStart', 'windowEnd', 'subject', ...keys, 'value'] },
  );
  return reply.type('text/csv; charset=utf-8').send(csv);
}

export function meterRoutes(service: MeterService) {
  return async (app: FastifyInstance) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['Meters'];

    typed.get(
      '/api/v1/meters',
      {
        schema: {
          operationId: 'listMeters',
          tags,
          querystring: z.object({ includeDeleted: z.stringbool().optional() }),
          response: { 200: z.array(ApiMeter) },
        },
      },
      async (request) =>
        (await service.list(request.namespace, request.query.includeDeleted)).map(toApiMeter),
    );

    typed.post(
      '/api/v1/meters',
      { schema: { operationId: 'createMeter', tags, body: MeterCreate, response: { 201: ApiMeter } } },
      async (request, reply) =>
        reply.code(201).send(toApiMeter(await service.create(request.namespace, request.body))),
    );

    typed.get(
      '/api/v1/meters/:meterIdOrSlug',
      { schema: { operationId: 'getMeter', tags, params: MeterParams, response: { 200: ApiMeter } } },
      async (request) => toApiMeter(await service.get(request.namespace, request.params.meterIdOrSlug)),
    );

    typed.put(
      '/api/v1/meters/:meterIdOrSlug',
      {
        schema: {
          operationId: 'updateMeter',
          tags,
          params: MeterParams,
          body: MeterUpdate,
          response: { 200: ApiMeter },
        },
      },
      async (request) =>
        toApiMeter(await service.update(request.namespace, request.params.meterIdOrSlug, request.body)),
    );

    typed.delete(
      '/api/v1/meters/:meterIdOrSlug',
      { schema: { operationId: 'deleteMeter', tags, params: MeterParams, response: { 204: z.null() } } },
      async (request, reply) => {
        await service.remove(request.namespace, request.params.meterIdOrSlug);
        return reply.code(204).send(null);
      },
    );

    typed.get(
      '/api/v1/meters/:meterIdOrSlug/query',
      {
        schema: {
          operationId: 'queryMeter',
          tags,
          params: MeterParams,
          querystring: QueryString.loose(),
          response: { 200: QueryResult.or(z.string()) },
        },
      },
      async (request, reply) => {
        const { clientId: _, ...query } = request.query;
        const input: UsageQueryInput = { ...query, filterGroupBy: filterGroupByFromQuery(request.query) };
        return sendUsage(
          request,
          reply,
          await service.query(request.namespace, request.params.meterIdOrSlug, input),
        );
      },
    );

    typed.post(
      '/api/v1/meters/:meterIdOrSlug/query',
      {
        schema: {
          operationId: 'queryMeterPost',
          tags,
          params: MeterParams,
          body: QueryBody,
          response: { 200: QueryResult.or(z.string()) },
        },
      },
      async (request, reply) =>
        sendUsage(
          request,
          reply,
          await service.query(request.namespace, request.params.meterIdOrSlug, request.body),
        ),
    );

    typed.get(
      '/api/v1/meters/:meterIdOrSlug/subjects',
      {
        schema: {
          operationId: 'listMeterSubjects',
          tags,
          params: MeterParams,
          querystring: TimeRange,
          response: { 200: z.array(z.string()) },
        },
      },
      async (request) => service.subjects(request.namespace, request.params.meterIdOrSlug, request.query),
    );

    typed.get(
      '/api/v1/meters/:meterIdOrSlug/group-by/:groupByKey/values',
      {
        schema: {
          operationId: 'listMeterGroupByValues',
          tags,
          params: MeterParams.extend({ groupByKey: z.string().min(1) }),
          querystring: TimeRange,
          response: { 200: z.array(z.string()) },
        },
      },
      async (request) =>
        service.groupByValues(
          request.namespace,
          request.params.meterIdOrSlug,
          request.params.groupByKey,
          request.query,
        ),
    );
  };
}

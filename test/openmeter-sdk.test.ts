import type { AddressInfo } from 'node:net';
import { type Event, HTTPError, OpenMeter } from '@openmeter/sdk';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { drain, useTestApp } from './support/env.ts';

/**
 * Drives the real, unmodified `@openmeter/sdk` client over HTTP against Meterline: whatever the SDK
 * sends (query-string encoding, media types) and expects back (status codes, field names, date
 * formats, problem+json) has to work as it does against OpenMeter.
 */

const ctx = useTestApp();

/** Every request the SDK made and what Meterline answered, as seen by the SDK; printed when a test fails. */
const traffic: {
  request: string;
  contentType: string | null;
  body: string;
  status: number;
  response: string;
}[] = [];
let om: OpenMeter;

/** Passed to the SDK as its `fetch`: records the exchange, changes nothing. */
async function recordingFetch(input: Request): Promise<Response> {
  const body = await input.clone().text();
  const response = await fetch(input);
  traffic.push({
    request: `${input.method} ${input.url.replace(/^http:\/\/[^/]+/, '')}`,
    contentType: input.headers.get('content-type'),
    body,
    status: response.status,
    response: `${response.headers.get('content-type') ?? ''} ${await response.clone().text()}`,
  });
  return response;
}

beforeAll(async () => {
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = ctx.app.server.address() as AddressInfo;
  om = new OpenMeter({ baseUrl: `http://127.0.0.1:${port}`, apiKey: ctx.key, fetch: recordingFetch });
});

beforeEach(({ onTestFailed }) => {
  traffic.length = 0;
  onTestFailed(() => console.log('SDK traffic:\n%s', JSON.stringify(traffic, null, 2)));
});

const drainSink = () => drain(ctx.env);

const d = (iso: string) => new Date(iso);
const from = d('2025-06-01T00:00:00.000Z');
const to = d('2025-06-04T00:00:00.000Z');

const prompt = (id: string, subject: string, time: string, tokens: number, model: string): Event => ({
  id,
  source: 'sdk-test',
  type: 'prompt',
  subject,
  time: d(time),
  data: { tokens, model },
});

describe('@openmeter/sdk against Meterline', () => {
  it('creates, reads and lists a meter', async () => {
    const meter = await om.meters.create({
      slug: 'prompt_tokens',
      name: 'Prompt tokens',
      aggregation: 'SUM',
      eventType: 'prompt',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
    });
    expect(meter).toMatchObject({
      slug: 'prompt_tokens',
      name: 'Prompt tokens',
      aggregation: 'SUM',
      eventType: 'prompt',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
    });
    expect(meter?.id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
    // The SDK turns RFC 3339 strings into Dates.
    expect(meter?.createdAt).toBeInstanceOf(Date);
    expect(meter?.updatedAt).toBeInstanceOf(Date);

    expect((await om.meters.get('prompt_tokens'))?.id).toBe(meter?.id);
    expect((await om.meters.get(meter?.id ?? ''))?.slug).toBe('prompt_tokens');
    expect((await om.meters.list())?.map((m) => m.slug)).toEqual(['prompt_tokens']);
  });

  it('reports errors as HTTPErrors carrying the problem details', async () => {
    const problem = async (request: Promise<unknown>) => {
      const error = await request.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(HTTPError);
      const http = error as HTTPError;
      return {
        status: http.status,
        type: http.type,
        title: http.title,
        message: http.message,
        detail: http.getField('detail'),
      };
    };
    // The SDK takes type, title and detail from the body only when the response's Content-Type is
    // exactly `application/problem+json`; otherwise it falls back to the status text.
    expect.soft(await problem(om.meters.get('nope'))).toEqual({
      status: 404,
      type: 'about:blank',
      title: 'Not Found',
      message: expect.stringMatching(/\[404\]: .*nope/),
      detail: expect.stringContaining('nope'),
    });
    expect.soft(await problem(om.meters.query('prompt_tokens', { groupBy: ['colour'] }))).toEqual({
      status: 400,
      type: 'about:blank',
      title: 'Bad Request',
      message: expect.stringMatching(/\[400\]: .*colour/),
      detail: expect.stringContaining('colour'),
    });
  });

  it('ingests a single event and a batch', async () => {
    await expect(
      om.events.ingest(prompt('evt-1', 'customer-1', '2025-06-01T10:00:00Z', 100, 'gpt-4o')),
    ).resolves.toBeUndefined();
    await expect(
      om.events.ingest([
        prompt('evt-2', 'customer-1', '2025-06-01T23:59:59.999Z', 50, 'gpt-4o-mini'),
        prompt('evt-3', 'customer-1', '2025-06-02T00:00:00Z', 25.5, 'gpt-4o'),
        prompt('evt-4', 'customer-2', '2025-06-02T12:00:00Z', 1000, 'gpt-4o'),
        { ...prompt('evt-5', 'customer-2', '2025-06-02T13:00:00Z', 999, 'gpt-4o'), type: 'completion' },
        // No id or source: the SDK fills in a UUID and '@openmeter/sdk'.
        {
          type: 'prompt',
          subject: 'customer-3',
          time: d('2025-06-03T08:00:00Z'),
          data: { tokens: 7, model: 'gpt-4o' },
        },
      ]),
    ).resolves.toBeUndefined();
    expect(traffic.map((t) => [t.request, t.contentType, t.status])).toEqual([
      ['POST /api/v1/events', 'application/cloudevents-batch+json', 204],
      ['POST /api/v1/events', 'application/cloudevents-batch+json', 204],
    ]);
    await drainSink();
  });

  it('queries usage by day in UTC', async () => {
    const result = await om.meters.query('prompt_tokens', {
      from,
      to,
      windowSize: 'DAY',
      windowTimeZone: 'UTC',
    });
    expect(result).toEqual({
      from,
      to,
      windowSize: 'DAY',
      data: [
        { value: 150, windowStart: from, windowEnd: d('2025-06-02T00:00:00Z'), subject: null, groupBy: {} },
        {
          value: 1025.5,
          windowStart: d('2025-06-02T00:00:00Z'),
          windowEnd: d('2025-06-03T00:00:00Z'),
          subject: null,
          groupBy: {},
        },
        {
          value: 7,
          windowStart: d('2025-06-03T00:00:00Z'),
          windowEnd: d('2025-06-04T00:00:00Z'),
          subject: null,
          groupBy: {},
        },
      ],
    });
  });

  it('queries usage by group, filtered by subject', async () => {
    const result = await om.meters.query('prompt_tokens', {
      from,
      to,
      groupBy: ['model'],
      subject: ['customer-1'],
    });
    const rows = [...result.data].sort((a, b) =>
      String(a.groupBy.model).localeCompare(String(b.groupBy.model)),
    );
    // OpenMeter: the subject parameter both filters and groups by subject.
    expect(rows).toEqual([
      { value: 125.5, windowStart: from, windowEnd: to, subject: 'customer-1', groupBy: { model: 'gpt-4o' } },
      {
        value: 50,
        windowStart: from,
        windowEnd: to,
        subject: 'customer-1',
        groupBy: { model: 'gpt-4o-mini' },
      },
    ]);
  });

  it('queries usage by subject and group, with a deep-object group filter', async () => {
    const result = await om.meters.query('prompt_tokens', {
      from,
      to,
      groupBy: ['subject', 'model'],
      filterGroupBy: { model: 'gpt-4o' },
    });
    const rows = [...result.data].sort((a, b) => String(a.subject).localeCompare(String(b.subject)));
    expect(rows).toEqual([
      { value: 125.5, windowStart: from, windowEnd: to, subject: 'customer-1', groupBy: { model: 'gpt-4o' } },
      { value: 1000, windowStart: from, windowEnd: to, subject: 'customer-2', groupBy: { model: 'gpt-4o' } },
      { value: 7, windowStart: from, windowEnd: to, subject: 'customer-3', groupBy: { model: 'gpt-4o' } },
    ]);

    const posted = await om.meters.queryPost('prompt_tokens', {
      from,
      to,
      windowSize: 'DAY',
      groupBy: ['model'],
      filterGroupBy: { model: ['gpt-4o-mini'] },
    });
    expect(posted).toEqual({
      from,
      to,
      windowSize: 'DAY',
      data: [
        {
          value: 50,
          windowStart: from,
          windowEnd: d('2025-06-02T00:00:00Z'),
          subject: null,
          groupBy: { model: 'gpt-4o-mini' },
        },
      ],
    });
  });

  it("lists the meter's subjects", async () => {
    // The SDK has no method for this endpoint; its typed client does.
    const subjects = await om.client.GET('/api/v1/meters/{meterIdOrSlug}/subjects', {
      params: { path: { meterIdOrSlug: 'prompt_tokens' } },
    });
    expect(subjects.response.status).toBe(200);
    expect(subjects.data).toEqual(['customer-1', 'customer-2', 'customer-3']);
    // from and to bound the events' time (inclusive).
    const later = await om.client.GET('/api/v1/meters/{meterIdOrSlug}/subjects', {
      params: { path: { meterIdOrSlug: 'prompt_tokens' }, query: { from: d('2025-06-02T06:00:00Z') } },
    });
    expect.soft(later.data).toEqual(['customer-2', 'customer-3']);
    const window = await om.client.GET('/api/v1/meters/{meterIdOrSlug}/subjects', {
      params: {
        path: { meterIdOrSlug: 'prompt_tokens' },
        query: { from: d('2025-06-02T06:00:00Z'), to: d('2025-06-02T23:00:00Z') },
      },
    });
    expect.soft(window.data).toEqual(['customer-2']);
  });

  it("lists a meter's group-by values", async () => {
    expect
      .soft(await om.meters.listGroupByValues('prompt_tokens', 'model', { from, to }))
      .toEqual(['gpt-4o', 'gpt-4o-mini']);
    expect
      .soft(
        await om.meters.listGroupByValues('prompt_tokens', 'model', { from: d('2025-06-02T06:00:00Z'), to }),
      )
      .toEqual(['gpt-4o']);
    // Without from, OpenMeter looks at the last 24 hours only; these events are older.
    expect.soft(await om.meters.listGroupByValues('prompt_tokens', 'model')).toEqual([]);
  });

  it('upserts, reads, lists and deletes subjects', async () => {
    const upserted = await om.subjects.upsert([
      { key: 'customer-1', displayName: 'Customer One', metadata: { tier: 'pro' } },
      { key: 'customer-2' },
    ]);
    expect(upserted).toEqual([
      expect.objectContaining({ key: 'customer-1', displayName: 'Customer One', metadata: { tier: 'pro' } }),
      expect.objectContaining({ key: 'customer-2' }),
    ]);
    const [one] = upserted ?? [];
    expect(one?.id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
    expect(one?.createdAt).toBeInstanceOf(Date);

    // A single subject is sent as a batch of one; an upsert updates only the fields it names.
    const [renamed] = (await om.subjects.upsert({ key: 'customer-1', displayName: 'Customer 1' })) ?? [];
    expect(renamed).toMatchObject({
      id: one?.id,
      key: 'customer-1',
      displayName: 'Customer 1',
      metadata: { tier: 'pro' },
    });

    expect((await om.subjects.get('customer-1'))?.id).toBe(one?.id);
    expect((await om.subjects.get(one?.id ?? ''))?.key).toBe('customer-1');
    expect((await om.subjects.list())?.map((s) => s.key).sort()).toEqual(['customer-1', 'customer-2']);

    await expect(om.subjects.delete('customer-2')).resolves.toBeUndefined();
    expect((await om.subjects.list())?.map((s) => s.key)).toEqual(['customer-1']);
    await expect(om.subjects.get('customer-2')).rejects.toMatchObject({ status: 404 });
  });

  it('lists ingested events', async () => {
    const listed = await om.events.list({ from, to, subject: 'customer-1' });
    expect(listed?.map((e) => e.event.id).sort()).toEqual(['evt-1', 'evt-2', 'evt-3']);
    const first = listed?.find((e) => e.event.id === 'evt-2');
    expect(first).toMatchObject({
      event: {
        id: 'evt-2',
        source: 'sdk-test',
        specversion: '1.0',
        type: 'prompt',
        subject: 'customer-1',
        time: d('2025-06-01T23:59:59.999Z'),
        data: { tokens: 50, model: 'gpt-4o-mini' },
      },
    });
    expect(first?.ingestedAt).toBeInstanceOf(Date);
    expect(first?.storedAt).toBeInstanceOf(Date);
    expect(first?.validationError).toBeUndefined();

    const defaulted = await om.events.list({ from, to, subject: 'customer-3' });
    expect(defaulted).toHaveLength(1);
    expect(defaulted?.[0]?.event).toMatchObject({ source: '@openmeter/sdk', specversion: '1.0' });
    expect(defaulted?.[0]?.event.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );

    const other = await om.events.list({ from, to, subject: 'customer-2', limit: 1 });
    expect(other?.map((e) => e.event.id)).toEqual(['evt-5']); // newest first
  });

  it('updates and deletes the meter', async () => {
    const updated = await om.meters.update('prompt_tokens', {
      name: 'Prompt tokens v2',
      groupBy: { model: '$.model', region: '$.region' },
    });
    expect(updated).toMatchObject({
      name: 'Prompt tokens v2',
      groupBy: { model: '$.model', region: '$.region' },
    });
    await expect(om.meters.delete('prompt_tokens')).resolves.toBeUndefined();
    await expect(om.meters.get('prompt_tokens')).rejects.toMatchObject({ status: 404 });
  });
});

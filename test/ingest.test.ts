import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudEvent, createTestSink, eventually, postEvents, useTestApp } from './support/env.ts';

const MAX_EVENTS = 50;
const MAX_BYTES = 64 * 1024;
const ctx = useTestApp({ ingest: { maxBatchEvents: MAX_EVENTS, maxBodyBytes: MAX_BYTES } });
let sink: ReturnType<typeof createTestSink>;

beforeAll(async () => {
  sink = createTestSink(ctx.env);
  await sink.start();
});

afterAll(async () => {
  await sink.stop();
});

const stream = () => (ctx.env.config.eventLog.kind === 'redis' ? ctx.env.config.eventLog.stream : '');
const logLength = () => ctx.env.redis.xlen(stream());

const post = (body: unknown, contentType?: string, auth = ctx.key) =>
  postEvents(ctx.app, auth, body, contentType);

async function listEvents(query = '', auth = ctx.key) {
  const res = await ctx.app.inject({
    method: 'GET',
    url: `/api/v1/events${query}`,
    headers: { authorization: `Bearer ${auth}` },
  });
  expect(res.statusCode).toBe(200);
  return res.json() as { event: { id: string; subject: string; time: string; data: unknown } }[];
}

describe('POST /api/v1/events accepts CloudEvents', () => {
  it('stores a single event, a batch and plain JSON, and lists them newest first', async () => {
    const single = cloudEvent({
      id: 'single-1',
      time: '2026-01-01T00:00:00.123Z',
      data: { usage: { tokens: 7 } },
    });
    const batch = [
      cloudEvent({ id: 'batch-1', time: '2026-01-01T00:00:01Z' }),
      cloudEvent({ id: 'batch-2', time: '2026-01-01T00:00:02Z' }),
    ];
    expect((await post(single, 'application/cloudevents+json')).statusCode).toBe(204);
    expect((await post(batch, 'application/cloudevents-batch+json; charset=utf-8')).statusCode).toBe(204);
    expect(
      (
        await post(
          cloudEvent({ id: 'json-1', time: '2026-01-01T00:00:03Z' }),
          'application/json; charset=UTF-8',
        )
      ).statusCode,
    ).toBe(204);
    expect(
      (await post([cloudEvent({ id: 'json-2', time: '2026-01-01T00:00:04Z' })], 'application/json'))
        .statusCode,
    ).toBe(204);

    const query = '?from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z';
    await eventually(async () => (await listEvents(query)).length === 5, 'five stored events');
    const listed = await listEvents(query);
    expect(listed.map((e) => e.event.id)).toEqual(['json-2', 'json-1', 'batch-2', 'batch-1', 'single-1']);
    const stored = listed.find((e) => e.event.id === 'single-1');
    expect(stored?.event).toMatchObject({
      time: '2026-01-01T00:00:00.123Z',
      data: { usage: { tokens: 7 } },
      subject: 'customer-1',
    });
  });

  it('defaults a missing time to the ingest time, to the millisecond', async () => {
    const before = Date.now();
    expect(
      (await post(cloudEvent({ id: 'no-time', time: undefined }), 'application/cloudevents+json')).statusCode,
    ).toBe(204);
    await eventually(async () => (await listEvents('?id=no-time')).length === 1, 'no-time event');
    const [stored] = await listEvents('?id=no-time');
    const time = Date.parse(stored?.event.time ?? '');
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(Date.now());
  });

  it('filters by subject, type and id, and honours limit', async () => {
    await post([
      cloudEvent({ id: 'f-1', subject: 'filter-alpha', type: 'calls', time: '2026-02-01T00:00:00Z' }),
      cloudEvent({ id: 'f-2', subject: 'filter-beta', type: 'calls', time: '2026-02-01T00:00:01Z' }),
      cloudEvent({ id: 'f-3', subject: 'filter-beta', type: 'tokens', time: '2026-02-01T00:00:02Z' }),
    ]);
    const range = 'from=2026-02-01T00:00:00Z&to=2026-02-02T00:00:00Z';
    await eventually(async () => (await listEvents(`?${range}`)).length === 3, 'filter events');
    expect((await listEvents(`?${range}&subject=beta`)).map((e) => e.event.id)).toEqual(['f-3', 'f-2']);
    expect((await listEvents(`?${range}&type=calls`)).map((e) => e.event.id)).toEqual(['f-2', 'f-1']);
    expect((await listEvents(`?${range}&id=f-1`)).map((e) => e.event.id)).toEqual(['f-1']);
    expect((await listEvents(`?${range}&limit=1`)).map((e) => e.event.id)).toEqual(['f-3']);
  });
});

describe('POST /api/v1/events refuses bad input and stores nothing of it', () => {
  const valid = () => cloudEvent({ id: `ok-${Math.random()}` });
  const tooLong = 'x'.repeat(MAX_BYTES);
  const cases: {
    name: string;
    body: unknown;
    contentType?: string;
    status: number;
    field?: string;
    index?: number;
    detail?: RegExp;
  }[] = [
    { name: 'malformed JSON', body: '{"id": "a", ', status: 400, detail: /not valid JSON/ },
    {
      name: 'non-UTF-8 bytes',
      body: Buffer.from([0x5b, 0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x5d]),
      status: 400,
      detail: /UTF-8/,
    },
    { name: 'wrong content type', body: JSON.stringify([valid()]), contentType: 'text/plain', status: 415 },
    {
      name: 'a charset other than UTF-8',
      body: JSON.stringify([valid()]),
      contentType: 'application/json; charset=latin1',
      status: 415,
    },
    {
      name: 'a body over the size limit',
      body: JSON.stringify([cloudEvent({ data: { pad: tooLong } })]),
      status: 413,
    },
    {
      name: 'more events than allowed',
      body: Array.from({ length: MAX_EVENTS + 1 }, valid),
      status: 413,
      detail: /at most 50 events/,
    },
    { name: 'an empty batch', body: [], status: 400, detail: /no events/ },
    {
      name: 'a batch body sent as a single event',
      body: [valid()],
      contentType: 'application/cloudevents+json',
      status: 400,
    },
    {
      name: 'a single event sent as a batch',
      body: valid(),
      contentType: 'application/cloudevents-batch+json',
      status: 400,
    },
    {
      name: 'a missing id',
      body: [valid(), cloudEvent({ id: undefined })],
      status: 400,
      index: 1,
      field: 'id',
    },
    { name: 'an empty source', body: [cloudEvent({ source: '' })], status: 400, index: 0, field: 'source' },
    {
      name: 'a missing subject',
      body: [valid(), valid(), cloudEvent({ subject: undefined })],
      status: 400,
      index: 2,
      field: 'subject',
    },
    { name: 'a missing type', body: [cloudEvent({ type: undefined })], status: 400, index: 0, field: 'type' },
    {
      name: 'a wrong specversion',
      body: [cloudEvent({ specversion: '0.3' })],
      status: 400,
      index: 0,
      field: 'specversion',
    },
    {
      name: 'an unparseable time',
      body: [cloudEvent({ time: 'yesterday' })],
      status: 400,
      index: 0,
      field: 'time',
    },
    {
      name: 'an impossible date',
      body: [cloudEvent({ time: '2026-02-30T00:00:00Z' })],
      status: 400,
      index: 0,
      field: 'time',
    },
    {
      name: 'a time too far in the future',
      body: [cloudEvent({ time: new Date(Date.now() + 3600_000).toISOString() })],
      status: 400,
      index: 0,
      field: 'time',
    },
    {
      name: 'data that is not an object',
      body: [cloudEvent({ data: [1, 2] })],
      status: 400,
      index: 0,
      field: 'data',
    },
    {
      name: 'data that is a string',
      body: [cloudEvent({ data: 'tokens=5' })],
      status: 400,
      index: 0,
      field: 'data',
    },
    { name: 'an id that is a number', body: [cloudEvent({ id: 42 })], status: 400, index: 0, field: 'id' },
    {
      name: 'a batch element that is not an object',
      body: [valid(), 'event'],
      status: 400,
      index: 1,
      field: '(event)',
    },
    {
      name: 'a wrong datacontenttype',
      body: [cloudEvent({ datacontenttype: 'text/xml' })],
      status: 400,
      index: 0,
      field: 'datacontenttype',
    },
    {
      name: 'an unpaired surrogate in data',
      body: `[${JSON.stringify(cloudEvent()).replace('"tokens"', '"\\ud800"')}]`,
      status: 400,
      index: 0,
      field: 'data',
    },
    {
      name: 'an unpaired surrogate in subject',
      body: `[${JSON.stringify(cloudEvent({ subject: 'SUBJ' })).replace('SUBJ', '\\udfff')}]`,
      status: 400,
      index: 0,
      field: 'subject',
    },
    {
      name: 'an unpaired surrogate in dataschema',
      body: `[${JSON.stringify(cloudEvent({ dataschema: 'SCHEMA' })).replace('SCHEMA', '\\ud800')}]`,
      status: 400,
      index: 0,
      field: 'dataschema',
    },
    {
      name: 'a "__proto__" key in data (JSON allows it; JavaScript objects would drop it)',
      body: `[${JSON.stringify(cloudEvent({ data: { PROTO: { tokens: 5 }, b: 1 } })).replace('PROTO', '__proto__')}]`,
      status: 400,
      index: 0,
      field: 'data',
    },
    {
      name: 'data nested deeper than 32 levels',
      body: [cloudEvent({ data: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) })],
      status: 400,
      index: 0,
      field: 'data',
    },
    {
      name: 'a repeated id with different content',
      body: [cloudEvent({ id: 'twin', data: { n: 1 } }), cloudEvent({ id: 'twin', data: { n: 2 } })],
      status: 400,
      index: 1,
      field: 'id',
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name} with ${c.status}`, async () => {
      const before = await logLength();
      const res = await post(c.body, c.contentType);
      expect(res.statusCode).toBe(c.status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const problem = res.json();
      expect(problem).toMatchObject({
        status: c.status,
        title: expect.any(String),
        detail: expect.any(String),
      });
      if (c.detail) expect(problem.detail).toMatch(c.detail);
      if (c.field) {
        expect(problem.errors).toEqual(
          expect.arrayContaining([expect.objectContaining({ index: c.index, field: c.field })]),
        );
      }
      expect(await logLength()).toBe(before);
    });
  }

  it('after all refusals, ClickHouse holds only the events that were accepted', async () => {
    await eventually(
      async () => (await ctx.env.log.lag(ctx.env.config.sink.consumerGroup)) === 0,
      'sink to drain',
    );
    const ids = (await listEvents('?from=2000-01-01T00:00:00Z&limit=100')).map((e) => e.event.id);
    expect(ids.some((id) => id.startsWith('ok-') || id === 'twin')).toBe(false);
    expect(await ctx.env.store.countEvents('acme')).toBe(ids.length);
  });
});

describe('authentication and namespaces', () => {
  it('refuses requests without a key or with an unknown key', async () => {
    const none = await ctx.app.inject({ method: 'GET', url: '/api/v1/events' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toMatch(/problem\+json/);
    const before = await logLength();
    expect((await post([cloudEvent()], undefined, 'ml_not-a-key')).statusCode).toBe(401);
    expect(await logLength()).toBe(before);
  });

  it('keeps each namespace to its own events, even with the same ids', async () => {
    const other = (await ctx.env.keys.create('globex')).key;
    const shared = { id: 'same-id', source: 'same-source', time: '2026-03-01T00:00:00Z' };
    expect((await post([cloudEvent({ ...shared, subject: 'acme-customer' })])).statusCode).toBe(204);
    expect(
      (await post([cloudEvent({ ...shared, subject: 'globex-customer' })], undefined, other)).statusCode,
    ).toBe(204);
    const range = '?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z';
    await eventually(async () => (await listEvents(range, other)).length === 1, 'globex event');
    await eventually(async () => (await listEvents(range)).length === 1, 'acme event');
    expect((await listEvents(range, other))[0]?.event.subject).toBe('globex-customer');
    expect((await listEvents(range))[0]?.event.subject).toBe('acme-customer');
  });

  it('stores API keys only as hashes', async () => {
    const created = await ctx.env.keys.create('hashcheck');
    const { rows } = await ctx.env.db.query('SELECT * FROM api_keys WHERE namespace = $1', ['hashcheck']);
    expect(JSON.stringify(rows)).not.toContain(created.key);
    expect(JSON.stringify(rows)).not.toContain(created.key.slice(10));
  });
});

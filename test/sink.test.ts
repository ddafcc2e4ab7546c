import { describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { encodeLogEvent, eventKey, type LogEvent } from '../src/events/event.ts';
import { toEventRow } from '../src/events/store.ts';
import { cloudEvent, createTestSink, eventually, postEvents, useTestApp } from './support/env.ts';

const ctx = useTestApp();
const post = (body: unknown) => postEvents(ctx.app, ctx.key, body);

/** The exact total of `data.tokens` per subject, as billing will read it. */
async function tokensBySubject(): Promise<Record<string, number>> {
  const db = identifier(ctx.env.ch.database);
  const rows = await ctx.env.ch.query<{ subject: string; total: number; events: string }>(
    sql`SELECT subject, sum(arrayElement(data_decimals, indexOf(data_paths, '$.tokens'))) AS total, count() AS events
        FROM ${db}.events FINAL WHERE namespace = 'acme' GROUP BY subject`,
  );
  return Object.fromEntries(rows.map((r) => [r.subject, Number(r.total)]));
}

const duplicatesDropped = async () => (await ctx.env.metrics.duplicatesDropped.get()).values[0]?.value ?? 0;

async function drained() {
  await eventually(
    async () => (await ctx.env.log.lag(ctx.env.config.sink.consumerGroup)) === 0,
    'sink to drain',
  );
}

describe('sink: each event counts once', () => {
  it('counts an event posted twice once, even when each copy got its own default time', async () => {
    const sink = createTestSink(ctx.env);
    await sink.start();
    const twice = cloudEvent({ id: 'posted-twice', subject: 'dup-a', time: undefined, data: { tokens: 5 } });
    expect((await post([twice])).statusCode).toBe(204);
    await drained();
    // A client retry comes later: the copy gets another default time (another second).
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await post([twice])).statusCode).toBe(204);
    // A copy with another explicit time is the same event too: the first stored copy stands.
    const retimed = cloudEvent({
      id: 'retimed',
      subject: 'dup-a',
      time: '2026-05-01T00:00:00Z',
      data: { tokens: 100 },
    });
    expect((await post([retimed])).statusCode).toBe(204);
    await drained();
    expect(
      (await post([{ ...retimed, time: '2026-05-03T00:00:00Z', data: { tokens: 200 } }])).statusCode,
    ).toBe(204);
    const sameTwiceInBatch = cloudEvent({ id: 'in-batch', subject: 'dup-a', data: { tokens: 7 } });
    expect((await post([sameTwiceInBatch, sameTwiceInBatch])).statusCode).toBe(204);
    await drained();
    await sink.stop();
    expect(await tokensBySubject()).toMatchObject({ 'dup-a': 112 });
  });

  it('counts copies that arrive in one sink batch once', async () => {
    // Two requests land in the log before the sink runs, so one sink batch holds both copies.
    const event = cloudEvent({ id: 'same-batch', subject: 'dup-b', data: { tokens: 3 } });
    await post([event]);
    await post([event]);
    const sink = createTestSink(ctx.env);
    await sink.start();
    await drained();
    await sink.stop();
    expect(await tokensBySubject()).toMatchObject({ 'dup-b': 3 });
    expect(await duplicatesDropped()).toBeGreaterThanOrEqual(1);
  });

  it('counts a batch once when the sink dies after the insert and before the acknowledgement', async () => {
    const events = Array.from({ length: 40 }, (_, i) =>
      cloudEvent({ id: `crash-${i}`, subject: 'dup-c', data: { tokens: i } }),
    );
    await post(events);
    const sink = createTestSink(ctx.env);
    const droppedBefore = await duplicatesDropped();
    let crashes = 0;
    // The handler a real sink runs, but the first attempt "dies" after ClickHouse accepted the insert.
    const subscription = await ctx.env.log.subscribe(
      { group: ctx.env.config.sink.consumerGroup, consumer: 'crashy', maxBatchSize: 500, maxWaitMs: 20 },
      async (records) => {
        await sink.storeBatch(records);
        if (crashes === 0) {
          crashes += 1;
          throw new Error('process died before acknowledging');
        }
      },
    );
    await drained();
    await subscription.stop();
    expect(crashes).toBe(1);
    expect(await tokensBySubject()).toMatchObject({ 'dup-c': (39 * 40) / 2 });
    // The redelivered batch was recognised as stored, not written again.
    expect((await duplicatesDropped()) - droppedBefore).toBe(40);
  });

  it('counts conflicting copies once when two sink consumers run side by side', async () => {
    // Each event is sent twice with a different time and value (a client retry with a fresh default
    // time): copies that two consumers handled at the same moment would both miss the stored-key
    // lookup. One batch per copy and the copies next to each other in the log make that moment likely.
    const copies = Array.from({ length: 30 }, (_, i) => [
      cloudEvent({ id: `race-${i}`, subject: 'dup-race', time: '2026-06-01T00:00:00Z', data: { tokens: 1 } }),
      cloudEvent({ id: `race-${i}`, subject: 'dup-race', time: '2026-06-02T00:00:00Z', data: { tokens: 1 } }),
    ]).flat();
    for (const copy of copies) expect((await post([copy])).statusCode).toBe(204);
    const sinks = [createTestSink(ctx.env, 'side-a', 1), createTestSink(ctx.env, 'side-b', 1)];
    await Promise.all(sinks.map((s) => s.start()));
    await drained();
    await Promise.all(sinks.map((s) => s.stop()));
    expect(await tokensBySubject()).toMatchObject({ 'dup-race': 30 });
  });

  it('reads exactly even when the same event was physically inserted twice (FINAL, not eventual merges)', async () => {
    const event: LogEvent = {
      namespace: 'acme',
      id: 'physical-twice',
      source: 'test',
      type: 'api-calls',
      subject: 'dup-d',
      time: Date.parse('2026-04-01T00:00:00Z'),
      datacontenttype: null,
      dataschema: null,
      data: { tokens: 11 },
      ingestedAt: Date.now(),
    };
    await ctx.env.store.insertRows([toEventRow(event, Date.now())]);
    await ctx.env.store.insertRows([toEventRow({ ...event, ingestedAt: event.ingestedAt + 1 }, Date.now())]);
    expect(await tokensBySubject()).toMatchObject({ 'dup-d': 11 });
  });
});

describe('sink: dead letters', () => {
  it('keeps records it cannot decode, with the reason, listed by the API, and stores the rest of the batch', async () => {
    const stream = ctx.env.config.eventLog.kind === 'redis' ? ctx.env.config.eventLog.stream : '';
    const good: LogEvent = {
      namespace: 'acme',
      id: 'beside-poison',
      source: 'test',
      type: 'api-calls',
      subject: 'dlq',
      time: Date.now(),
      datacontenttype: null,
      dataschema: null,
      data: { tokens: 1 },
      ingestedAt: Date.now(),
    };
    await ctx.env.redis.xadd(
      stream,
      '*',
      'k',
      JSON.stringify(['acme', 'test', 'poison']),
      'v',
      '{"namespace":"acme","id":',
    );
    await ctx.env.redis.xadd(stream, '*', 'k', eventKey(good), 'v', encodeLogEvent(good));
    const sink = createTestSink(ctx.env);
    await sink.start();
    await drained();
    await sink.stop();

    const res = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/dead-letters',
      headers: { authorization: `Bearer ${ctx.key}` },
    });
    expect(res.statusCode).toBe(200);
    const letters = res.json() as { reason: string; payload: string }[];
    expect(letters).toHaveLength(1);
    expect(letters[0]?.reason).toMatch(/undecodable/);
    expect(letters[0]?.payload).toBe('{"namespace":"acme","id":');
    expect(await tokensBySubject()).toMatchObject({ dlq: 1 });

    const other = (await ctx.env.keys.create('other')).key;
    const elsewhere = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/dead-letters',
      headers: { authorization: `Bearer ${other}` },
    });
    expect(elsewhere.json()).toEqual([]);
  });
});

describe('sink: events ClickHouse refuses', () => {
  it('sets aside only the refused event and stores the rest of its batch, without blocking the log', async () => {
    const stream = ctx.env.config.eventLog.kind === 'redis' ? ctx.env.config.eventLog.stream : '';
    const event = (id: string, data: Record<string, unknown>): LogEvent => ({
      namespace: 'acme',
      id,
      source: 'test',
      type: 'api-calls',
      subject: 'refused',
      time: Date.now(),
      datacontenttype: null,
      dataschema: null,
      data,
      ingestedAt: Date.now(),
    });
    // An unpaired surrogate cannot be stored as UTF-8; the API refuses it, but an older producer
    // writing to the log directly might not.
    const batch = [
      ...Array.from({ length: 6 }, (_, i) => event(`good-${i}`, { tokens: 1 })),
      event('poison', { tokens: 1000, note: 'bad \ud800 text' }),
      ...Array.from({ length: 5 }, (_, i) => event(`good-late-${i}`, { tokens: 1 })),
    ];
    for (const e of batch) await ctx.env.redis.xadd(stream, '*', 'k', eventKey(e), 'v', encodeLogEvent(e));
    const sink = createTestSink(ctx.env);
    await sink.start();
    await drained();
    await sink.stop();

    expect(await tokensBySubject()).toMatchObject({ refused: 11 });
    const letters = await ctx.env.store.listDeadLetters('acme', 10);
    const poison = letters.find((l) => l.reason.includes('ClickHouse refused'));
    expect(poison?.reason).toMatch(/surrogate/);
    expect(JSON.parse(poison?.payload ?? '{}').id).toBe('poison');
  });
});

describe('sink: large batches', () => {
  it('looks up a 5,000-event batch of long ids in chunks ClickHouse accepts, and stores it once', async () => {
    const long = 'x'.repeat(200);
    const events = Array.from({ length: 5000 }, (_, i) =>
      cloudEvent({
        id: `${long}-${i}`,
        source: i % 2 ? 'a' : 'b',
        subject: 'big-batch',
        data: { tokens: 1 },
      }),
    );
    for (let i = 0; i < events.length; i += 1000) await post(events.slice(i, i + 1000));
    const sink = createTestSink(ctx.env, 'big', 5000);
    await sink.start();
    await drained();
    // The same 5,000 again: every one is found by the lookup, none stored twice.
    for (let i = 0; i < events.length; i += 1000) await post(events.slice(i, i + 1000));
    await drained();
    await sink.stop();
    expect(await tokensBySubject()).toMatchObject({ 'big-batch': 5000 });
  });

  it('sizes lookups in bytes: ids of multi-byte characters and a source per event are found, not stalled on', async () => {
    // 300 ids of 1,000 three-byte characters (~900 KB of lookup text): half from one source, half
    // each from its own.
    const events = Array.from({ length: 300 }, (_, i) =>
      cloudEvent({
        id: `${'€'.repeat(1000)}${i}`,
        source: i < 150 ? 'shared' : `pod-${i}`,
        subject: 'wide-ids',
        data: { tokens: 1 },
      }),
    );
    for (let i = 0; i < events.length; i += 100) await post(events.slice(i, i + 100));
    const sink = createTestSink(ctx.env, 'wide', 5000);
    await sink.start();
    await drained();
    for (let i = 0; i < events.length; i += 100) await post(events.slice(i, i + 100));
    await drained();
    await sink.stop();
    expect(await tokensBySubject()).toMatchObject({ 'wide-ids': 300 });
  });
});

describe('sink: batches of large events', () => {
  it('stores a burst of 10,000 events of 60 KB each exactly once, in full 5,000-event batches', {
    timeout: 240_000,
  }, async () => {
    // Each event carries a 60 KB prompt: a full batch is ~600 MB of rows, far more than one
    // JavaScript string can hold, so it must go to ClickHouse in bounded pieces.
    const prompt = (i: number) => `${i}:`.padEnd(60_000, 'the quick brown fox jumps over the lazy dog ');
    const events = Array.from({ length: 10_000 }, (_, i) =>
      cloudEvent({ id: `prompt-${i}`, subject: 'prompts', data: { tokens: 1, prompt: prompt(i) } }),
    );
    // 80 events (4.8 MB) per request, under the 5 MB body limit; all in the log before the sink runs.
    for (let i = 0; i < events.length; i += 80) {
      expect((await post(events.slice(i, i + 80))).statusCode).toBe(204);
    }
    const bigBatches = async () => {
      const { values } = await ctx.env.metrics.sinkBatchSize.get();
      const count = (le: number | string) => values.find((v) => v.labels.le === le)?.value ?? 0;
      return count('+Inf') - count(1000);
    };
    const bigBefore = await bigBatches();
    const sink = createTestSink(ctx.env, 'prompts', 5000);
    await sink.start();
    await eventually(
      async () => (await ctx.env.log.lag(ctx.env.config.sink.consumerGroup)) === 0,
      'sink to drain',
      180_000,
    );
    await sink.stop();
    expect(await tokensBySubject()).toMatchObject({ prompts: 10_000 });
    const db = identifier(ctx.env.ch.database);
    const [row] = await ctx.env.ch.query<{ rows: string; longest: string }>(
      sql`SELECT count() AS rows, max(length(data)) AS longest FROM ${db}.events WHERE subject = 'prompts'`,
    );
    expect(Number(row?.rows)).toBe(10_000); // physically once, not merely collapsed by FINAL
    expect(Number(row?.longest)).toBeGreaterThan(60_000);
    // Earlier tests in this file set some of acme's events aside on purpose; none of these.
    const letters = await ctx.env.store.listDeadLetters('acme', 100);
    expect(letters.filter((l) => l.payload.includes('"prompt-'))).toEqual([]);
    expect((await bigBatches()) - bigBefore).toBeGreaterThanOrEqual(1);
  });
});

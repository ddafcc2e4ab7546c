import { describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { encodeLogEvent, flattenData, type LogEvent } from '../src/events/event.ts';
import { cloudEvent, drain, postEvents, useTestApp } from './support/env.ts';

// Issue 8 §1: ingest refuses at the door what the sink could never store, with the default limits.
const ctx = useTestApp();
const MAX_EVENT_BYTES = 2 * 1024 * 1024;
const MAX_DEPTH = 32;
const MAX_LEAVES = 10_000;

const logLength = () =>
  ctx.env.config.eventLog.kind === 'redis' ? ctx.env.redis.xlen(ctx.env.config.eventLog.stream) : 0;

/** Ids of events in refused requests: none may be stored. */
const refusedIds: string[] = [];

/** Posts an event after a valid one; expects 204, or 400 naming `field` with the figures. */
async function expectOutcome(
  event: { id: string },
  refused?: { field: string; limit: number; actual?: number },
) {
  const before = await logLength();
  const neighbour = cloudEvent();
  const res = await postEvents(ctx.app, ctx.key, [neighbour, event]);
  if (!refused) {
    expect(res.statusCode, res.body).toBe(204);
    return;
  }
  refusedIds.push(neighbour.id, event.id);
  expect(res.statusCode, res.body).toBe(400);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const errors = res.json().errors as { index: number; field: string; message: string }[];
  expect(errors).toEqual([{ index: 1, field: refused.field, message: expect.any(String) }]);
  expect(errors[0]?.message).toContain(`limit is ${refused.limit}`);
  if (refused.actual !== undefined) expect(errors[0]?.message).toContain(String(refused.actual));
  expect(await logLength()).toBe(before);
}

/** `levels` nested objects under one key each, around `inner`. */
function nest(levels: number, inner: unknown, key = (i: number) => `k${i}`): unknown {
  let value = inner;
  for (let i = levels - 1; i >= 0; i -= 1) value = { [key(i)]: value };
  return value;
}

/** What the flattened paths of `data` take, computed the sink's way. */
const pathBytes = (data: Record<string, unknown>) =>
  flattenData(data).paths.reduce((sum, path) => sum + Buffer.byteLength(path), 0);

describe('INGEST_MAX_EVENT_BYTES (default 2 MiB)', () => {
  /** The encoded size of an event as ingest will log it (namespace acme, 13-digit times). */
  function encodedBytes(event: ReturnType<typeof cloudEvent>): number {
    const logEvent: LogEvent = {
      namespace: 'acme',
      id: event.id,
      source: event.source,
      type: event.type,
      subject: event.subject,
      time: Date.parse(event.time),
      datacontenttype: null,
      dataschema: null,
      data: event.data as Record<string, unknown>,
      ingestedAt: Date.now(),
    };
    return Buffer.byteLength(encodeLogEvent(logEvent));
  }
  const withPrompt = (size: number, id: string) => {
    const event = cloudEvent({ id, data: { prompt: '', tokens: 1 } });
    const prompt = 'é'.repeat(Math.floor((size - encodedBytes(event)) / 2));
    const rest = size - encodedBytes(event) - Buffer.byteLength(prompt);
    return cloudEvent({ id, data: { prompt: prompt + 'x'.repeat(rest), tokens: 1 } });
  };

  it('takes an event of exactly the limit, counted in UTF-8 bytes', async () => {
    const event = withPrompt(MAX_EVENT_BYTES, 'prompt-a');
    expect(encodedBytes(event)).toBe(MAX_EVENT_BYTES);
    await expectOutcome(event);
  });

  it('refuses one byte more, naming (event)', async () => {
    const event = withPrompt(MAX_EVENT_BYTES + 1, 'prompt-b');
    await expectOutcome(event, { field: '(event)', limit: MAX_EVENT_BYTES, actual: MAX_EVENT_BYTES + 1 });
  });

  it('stores a 1 MB prompt', async () => {
    const prompt = 'Summarise the following. '.repeat(40_000).slice(0, 1_000_000);
    await expectOutcome(cloudEvent({ id: 'one-mb', data: { prompt, tokens: 250_000 } }));
    await drain(ctx.env);
    const db = identifier(ctx.env.ch.database);
    const [row] = await ctx.env.ch.query<{ n: string }>(
      sql`SELECT toString(length(data_values[indexOf(data_paths, '$.prompt')])) AS n FROM ${db}.events FINAL
          WHERE namespace = 'acme' AND id = 'one-mb'`,
    );
    expect(row?.n).toBe('1000000');
  });
});

describe('INGEST_MAX_DATA_DEPTH (default 32)', () => {
  it('takes data nested 32 levels deep (data itself is the first)', async () => {
    await expectOutcome(cloudEvent({ data: nest(MAX_DEPTH - 1, { n: 1 }) }));
  });

  it('refuses 33 levels, naming data', async () => {
    await expectOutcome(cloudEvent({ data: nest(MAX_DEPTH, { n: 1 }) }), { field: 'data', limit: MAX_DEPTH });
  });

  it('refuses 100,000 levels (deeper than a recursive walk could go)', async () => {
    const body = `[${JSON.stringify(cloudEvent({ data: { deep: 'DEEP' } })).replace('"DEEP"', `${'['.repeat(100_000)}${']'.repeat(100_000)}`)}]`;
    const res = await postEvents(ctx.app, ctx.key, body);
    refusedIds.push(JSON.parse(body)[0].id);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().errors).toEqual([expect.objectContaining({ index: 0, field: 'data' })]);
  });
});

describe('INGEST_MAX_DATA_LEAVES (default 10,000)', () => {
  const leaves = (n: number) => ({ values: Array.from({ length: n - 1 }, (_, i) => i), other: null });

  it('takes 10,000 values', async () => {
    await expectOutcome(cloudEvent({ data: leaves(MAX_LEAVES) }));
  });

  it('refuses 10,001, naming data', async () => {
    await expectOutcome(cloudEvent({ data: leaves(MAX_LEAVES + 1) }), {
      field: 'data',
      limit: MAX_LEAVES,
      actual: MAX_LEAVES + 1,
    });
  });
});

describe('flattened paths, bounded by INGEST_MAX_EVENT_BYTES', () => {
  /** Long keys nested deep over a few values, topped up with one key so paths total `total` bytes. */
  function longPaths(total: number): Record<string, unknown> {
    const key = (i: number) => `${i}`.padEnd(1000, 'k');
    const base = {
      deep: nest(
        20,
        Array.from({ length: 100 }, () => 0),
        key,
      ),
    };
    const remaining = total - pathBytes(base);
    // A plain top-level key adds "$." and itself.
    return { ...base, [`t${'x'.repeat(remaining - 3)}`]: 0 };
  }

  it('takes paths of exactly the limit', async () => {
    const data = longPaths(MAX_EVENT_BYTES);
    expect(pathBytes(data)).toBe(MAX_EVENT_BYTES);
    await expectOutcome(cloudEvent({ data }));
  });

  it('refuses one byte more, naming data', async () => {
    const data = longPaths(MAX_EVENT_BYTES + 1);
    await expectOutcome(cloudEvent({ data }), {
      field: 'data',
      limit: MAX_EVENT_BYTES,
      actual: MAX_EVENT_BYTES + 1,
    });
  });

  it('refuses a hostile deep-and-wide event quickly, without building its paths', async () => {
    // 30 levels of 1,000-character keys over 5,000 numbers: ~36 KB of JSON, ~150 MB of paths.
    const key = (i: number) => `${i}`.padEnd(1000, 'k');
    const data = nest(
      30,
      Array.from({ length: 5000 }, (_, i) => i % 10),
      key,
    ) as Record<string, unknown>;
    const started = performance.now();
    await expectOutcome(cloudEvent({ id: 'hostile', data }), { field: 'data', limit: MAX_EVENT_BYTES });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('stored none of the refused events', async () => {
    await drain(ctx.env);
    const db = identifier(ctx.env.ch.database);
    expect(refusedIds).toHaveLength(11);
    const ids = await ctx.env.ch.query<{ id: string }>(
      sql`SELECT DISTINCT id FROM ${db}.events WHERE namespace = 'acme' AND id IN ${refusedIds}`,
    );
    expect(ids).toEqual([]);
    // Every accepted request stored both of its events.
    expect(await ctx.env.store.countEvents('acme')).toBe(10);
  });
});

import { describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { cloudEvent, drain, postEvents, useTestApp } from './support/env.ts';

// Issue 8 §3: numbers keep the client's literal through ingest, the log, ClickHouse and the API.
const ctx = useTestApp();

function api(method: 'GET' | 'POST', url: string, body?: unknown) {
  return ctx.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ctx.key}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

/** A batch body whose `"#name#"` strings become the given bare JSON number literals. */
function withLiterals(events: unknown[], literals: Record<string, string>): string {
  let text = JSON.stringify(events);
  for (const [name, literal] of Object.entries(literals)) text = text.replaceAll(`"#${name}#"`, literal);
  return text;
}

const logLength = () =>
  ctx.env.config.eventLog.kind === 'redis' ? ctx.env.redis.xlen(ctx.env.config.eventLog.stream) : 0;

const TIME = '2026-05-01T10:00:00Z';
const RANGE = 'from=2026-05-01T00:00:00Z&to=2026-05-02T00:00:00Z';

describe('integers beyond 2^53', () => {
  it('stay distinct in group-by, unique count and the events list', async () => {
    for (const meter of [
      { slug: 'orders', aggregation: 'COUNT', eventType: 'order', groupBy: { order: '$.order_id' } },
      { slug: 'users', aggregation: 'UNIQUE_COUNT', eventType: 'order', valueProperty: '$.user_id' },
    ]) {
      const res = await api('POST', '/api/v1/meters', meter);
      expect(res.statusCode, res.body).toBe(201);
    }
    const event = (id: string, order: string, user: string) =>
      cloudEvent({ id, type: 'order', time: TIME, data: { order_id: `#${order}#`, user_id: `#${user}#` } });
    // Each pair is one double: JSON.parse reads ...567 as ...568, and ...543 as ...544.
    const body = withLiterals([event('big-1', 'o1', 'u1'), event('big-2', 'o2', 'u2')], {
      o1: '12345678901234567',
      o2: '12345678901234568',
      u1: '98765432109876543',
      u2: '98765432109876544',
    });
    expect((await postEvents(ctx.app, ctx.key, body)).statusCode).toBe(204);
    await drain(ctx.env);

    const groups = await api('GET', `/api/v1/meters/orders/query?${RANGE}&groupBy=order`);
    expect(groups.statusCode, groups.body).toBe(200);
    expect(
      groups
        .json()
        .data.map((row: { groupBy: { order: string }; value: number }) => [row.groupBy.order, row.value])
        .sort(),
    ).toEqual([
      ['12345678901234567', 1],
      ['12345678901234568', 1],
    ]);

    const unique = await api('GET', `/api/v1/meters/users/query?${RANGE}`);
    expect(unique.statusCode, unique.body).toBe(200);
    expect(unique.json().data).toEqual([expect.objectContaining({ value: 2 })]);

    const list = await api('GET', `/api/v1/events?${RANGE}&id=big-`);
    expect(list.statusCode, list.body).toBe(200);
    // The original literals, unquoted: a JSON number as the client wrote it.
    expect(list.body).toContain('"order_id":12345678901234567,"user_id":98765432109876543');
    expect(list.body).toContain('"order_id":12345678901234568,"user_id":98765432109876544');
  });

  it('keep every literal as written: trailing zeros, exponents, -0', async () => {
    const body = withLiterals(
      [cloudEvent({ id: 'literal-1', time: TIME, data: { a: '#a#', b: ['#b#', '#c#'] } })],
      {
        a: '1.50',
        b: '1e3',
        c: '-0',
      },
    );
    expect((await postEvents(ctx.app, ctx.key, body)).statusCode).toBe(204);
    await drain(ctx.env);
    const list = await api('GET', `/api/v1/events?${RANGE}&id=literal-1`);
    expect(list.body).toContain('"data":{"a":1.50,"b":[1e3,-0]}');
    const db = identifier(ctx.env.ch.database);
    const [row] = await ctx.env.ch.query<{ data: string; data_values: string[] }>(
      sql`SELECT data, data_values FROM ${db}.events FINAL WHERE namespace = 'acme' AND id = 'literal-1'`,
    );
    expect(row).toEqual({ data: '{"a":1.50,"b":[1e3,-0]}', data_values: ['1.50', '1e3', '-0'] });
  });
});

describe('the countable range, |x| < 10^18', () => {
  it('counts 999999999999999999 exactly in a SUM meter', async () => {
    const meter = { slug: 'big_sum', aggregation: 'SUM', eventType: 'big-sum', valueProperty: '$.n' };
    expect((await api('POST', '/api/v1/meters', meter)).statusCode).toBe(201);
    const body = withLiterals(
      [
        cloudEvent({ id: 'sum-1', type: 'big-sum', time: TIME, data: { n: '#max#' } }),
        cloudEvent({ id: 'sum-2', type: 'big-sum', time: TIME, data: { n: '#tiny#' } }),
      ],
      { max: '999999999999999999', tiny: '0.000000001' },
    );
    expect((await postEvents(ctx.app, ctx.key, body)).statusCode).toBe(204);
    await drain(ctx.env);

    const usage = await api('GET', `/api/v1/meters/big_sum/query?${RANGE}`);
    expect(usage.statusCode, usage.body).toBe(200);
    // The API answers a JSON number, so the nearest double; the stored sum is exact to the last digit.
    expect(usage.json().data).toEqual([expect.objectContaining({ value: Number('999999999999999999') })]);
    const db = identifier(ctx.env.ch.database);
    const [row] = await ctx.env.ch.query<{ total: string }>(
      sql`SELECT toString(sum(data_decimals[indexOf(data_paths, '$.n')])) AS total FROM ${db}.events FINAL
          WHERE namespace = 'acme' AND type = 'big-sum'`,
    );
    expect(row?.total).toBe('999999999999999999.000000001');
  });

  for (const literal of [
    '1e400',
    '1e18',
    '-1000000000000000000',
    '999999999999999999.9999999999',
    '12345678901234567891',
  ]) {
    it(`refuses ${literal} in data with 400 naming the field, storing nothing`, async () => {
      const before = await logLength();
      const body = withLiterals(
        [
          cloudEvent({ id: `ok-${literal}` }),
          cloudEvent({ id: `bad-${literal}`, data: { order: { order_id: '#n#' }, tokens: 1 } }),
        ],
        { n: literal },
      );
      const res = await postEvents(ctx.app, ctx.key, body);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const [problem] = res.json().errors;
      expect(problem).toMatchObject({ index: 1, field: 'data.$.order.order_id' });
      expect(problem.message).toMatch(/\|x\| < 10\^18/);
      expect(problem.message).toMatch(/as a JSON string/);
      expect(await logLength()).toBe(before);
    });
  }

  it('keeps a numeric string above the range as a string', async () => {
    const body = [cloudEvent({ id: 'str-1', time: TIME, data: { order_id: '12345678901234567891' } })];
    expect((await postEvents(ctx.app, ctx.key, body)).statusCode).toBe(204);
    await drain(ctx.env);
    const list = await api('GET', `/api/v1/events?${RANGE}&id=str-1`);
    expect(list.json()[0].event.data).toEqual({ order_id: '12345678901234567891' });
  });

  it('stored nothing of the refused requests', async () => {
    await drain(ctx.env);
    const db = identifier(ctx.env.ch.database);
    const [row] = await ctx.env.ch.query<{ n: string }>(
      sql`SELECT toString(count()) AS n FROM ${db}.events WHERE namespace = 'acme' AND (id LIKE 'ok-%' OR id LIKE 'bad-%')`,
    );
    expect(row?.n).toBe('0');
  });
});

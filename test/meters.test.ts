import { describe, expect, it } from 'vitest';
import { cloudEvent, drain, postEvents, useTestApp } from './support/env.ts';

const ctx = useTestApp();

function api(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return ctx.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ctx.key}`, ...headers },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

async function ingest(events: unknown[]) {
  expect((await postEvents(ctx.app, ctx.key, events)).statusCode).toBe(204);
  await drain(ctx.env);
}

const tokens = {
  slug: 'tokens_total',
  name: 'Tokens',
  aggregation: 'SUM',
  eventType: 'ai-tokens',
  valueProperty: '$.usage.input_tokens',
  groupBy: { model: '$.model', tier: "$['customer tier']" },
};

describe('meters API', () => {
  it('creates, reads, lists, updates and deletes a meter', async () => {
    const created = await api('POST', '/api/v1/meters', tokens);
    expect(created.statusCode, created.body).toBe(201);
    const meter = created.json();
    expect(meter).toMatchObject({ slug: 'tokens_total', aggregation: 'SUM', groupBy: tokens.groupBy });
    expect(meter.id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
    expect((await api('GET', `/api/v1/meters/${meter.id}`)).json().slug).toBe('tokens_total');
    expect((await api('GET', '/api/v1/meters/tokens_total')).json().id).toBe(meter.id);
    expect((await api('POST', '/api/v1/meters', tokens)).statusCode).toBe(409);

    const updated = await api('PUT', '/api/v1/meters/tokens_total', {
      name: 'Input tokens',
      groupBy: { ...tokens.groupBy, region: '$.region' },
    });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ name: 'Input tokens', groupBy: { region: '$.region' } });

    const temp = (
      await api('POST', '/api/v1/meters', { slug: 'temp', aggregation: 'COUNT', eventType: 'x' })
    ).json();
    expect((await api('DELETE', '/api/v1/meters/temp')).statusCode).toBe(204);
    expect((await api('GET', '/api/v1/meters/temp')).statusCode).toBe(404);
    expect((await api('GET', '/api/v1/meters')).json().map((m: { slug: string }) => m.slug)).toEqual([
      'tokens_total',
    ]);
    const all = (await api('GET', '/api/v1/meters?includeDeleted=true')).json();
    expect(all.find((m: { id: string }) => m.id === temp.id)?.deletedAt).toBeTruthy();
  });

  it('reaches a meter whose slug looks like a ULID, by slug and by id', async () => {
    const slug = '0123456789abcdefghjkmnpqrs';
    const created = await api('POST', '/api/v1/meters', {
      slug,
      aggregation: 'COUNT',
      eventType: 'ulid-like',
    });
    expect(created.statusCode, created.body).toBe(201);
    const { id } = created.json();
    expect((await api('GET', `/api/v1/meters/${slug}`)).json().id).toBe(id);
    expect((await api('GET', `/api/v1/meters/${id}`)).json().slug).toBe(slug);
    const renamed = await api('PUT', `/api/v1/meters/${slug}`, { name: 'Looks like an id' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json().name).toBe('Looks like an id');
    const usage = await api('GET', `/api/v1/meters/${slug}/query`);
    expect(usage.statusCode, usage.body).toBe(200);
    expect(usage.json().data).toEqual([]);
    expect((await api('DELETE', `/api/v1/meters/${slug}`)).statusCode).toBe(204);
    expect((await api('GET', `/api/v1/meters/${slug}`)).statusCode).toBe(404);
  });

  it('refuses invalid meters naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ ...tokens, slug: 'Bad Slug' }, 'slug'],
      [{ ...tokens, slug: 'x1', aggregation: 'MEDIAN' }, 'aggregation'],
      [{ ...tokens, slug: 'x2', valueProperty: undefined }, 'valueProperty'],
      [{ ...tokens, slug: 'x3', valueProperty: '$..tokens' }, 'valueProperty'],
      [{ ...tokens, slug: 'x4', groupBy: { 'bad-key': '$.a' } }, 'groupBy'],
      [{ ...tokens, slug: 'x5', eventType: '' }, 'eventType'],
    ];
    for (const [body, field] of cases) {
      const res = await api('POST', '/api/v1/meters', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(JSON.stringify(res.json().errors)).toContain(field);
    }
  });
});

describe('usage queries', () => {
  it('sums nested values by window, subject and group, exactly, in a time zone', async () => {
    const event = (subject: string, time: string, value: unknown, model = 'gpt-4o', extra: object = {}) =>
      cloudEvent({
        type: 'ai-tokens',
        subject,
        time,
        data: { model, usage: { input_tokens: value }, 'customer tier': 'pro', ...extra },
      });
    await ingest([
      event('acme', '2026-03-28T22:30:00Z', 0.1), // Paris: 28 March 23:30
      event('acme', '2026-03-28T23:30:00Z', 0.2), // Paris: 29 March 00:30 (DST starts 29 March 02:00)
      event('acme', '2026-03-29T21:59:59.999Z', '1250'), // Paris: 29 March 23:59:59.999 (numeric string)
      event('acme', '2026-03-29T22:00:00Z', 5, 'gpt-4o-mini'), // Paris: 30 March 00:00
      event('globex', '2026-03-29T12:00:00Z', 1e-9),
      event('globex', '2026-03-29T13:00:00Z', 'n/a'), // not a number: left out
      event('globex', '2026-03-29T14:00:00Z', undefined), // missing: left out
    ]);

    const total = await api(
      'GET',
      '/api/v1/meters/tokens_total/query?from=2026-03-28T00:00:00Z&to=2026-04-01T00:00:00Z',
    );
    expect(total.statusCode, total.body).toBe(200);
    expect(total.json().data).toEqual([
      {
        value: 1255.300000001,
        windowStart: '2026-03-28T00:00:00.000Z',
        windowEnd: '2026-04-01T00:00:00.000Z',
        subject: null,
        groupBy: {},
      },
    ]);

    const days = await api(
      'GET',
      '/api/v1/meters/tokens_total/query?from=2026-03-27T23:00:00Z&to=2026-03-30T22:00:00Z&windowSize=DAY&windowTimeZone=Europe/Paris&groupBy=subject&subject=acme',
    );
    expect(days.statusCode, days.body).toBe(200);
    expect(days.json().data).toEqual([
      {
        value: 0.1,
        windowStart: '2026-03-27T23:00:00.000Z',
        windowEnd: '2026-03-28T23:00:00.000Z',
        subject: 'acme',
        groupBy: {},
      },
      // The DST day is 23 hours long.
      {
        value: 1250.2,
        windowStart: '2026-03-28T23:00:00.000Z',
        windowEnd: '2026-03-29T22:00:00.000Z',
        subject: 'acme',
        groupBy: {},
      },
      {
        value: 5,
        windowStart: '2026-03-29T22:00:00.000Z',
        windowEnd: '2026-03-30T22:00:00.000Z',
        subject: 'acme',
        groupBy: {},
      },
    ]);

    const byModel = await api('POST', '/api/v1/meters/tokens_total/query', {
      from: '2026-03-28T00:00:00Z',
      to: '2026-04-01T00:00:00Z',
      groupBy: ['model', 'tier'],
      filterGroupBy: { model: ['gpt-4o-mini', "o'brien"] },
    });
    expect(byModel.statusCode, byModel.body).toBe(200);
    expect(byModel.json().data).toEqual([
      expect.objectContaining({ value: 5, groupBy: { model: 'gpt-4o-mini', tier: 'pro' } }),
    ]);

    const csv = await api('GET', '/api/v1/meters/tokens_total/query?groupBy=subject', undefined, {
      accept: 'text/csv',
    });
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.body.split('\n')[0]).toBe('windowStart,windowEnd,subject,value');
    expect(csv.body).toContain(',acme,1255.3');
  });

  it('reads a time zone in any case as its IANA spelling', async () => {
    const days = (zone: string) =>
      api(
        'GET',
        `/api/v1/meters/tokens_total/query?from=2026-03-27T23:00:00Z&to=2026-03-30T22:00:00Z&windowSize=DAY&windowTimeZone=${zone}`,
      );
    const expected = (await days('Europe/Paris')).json();
    expect(expected.data).toHaveLength(3);
    for (const zone of ['europe/paris', 'EUROPE/PARIS']) {
      const res = await days(zone);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json(), zone).toEqual(expected);
    }
    const utc = await days('utc');
    expect(utc.statusCode, utc.body).toBe(200);
    expect(utc.json().data.map((row: { windowStart: string }) => row.windowStart)).toEqual([
      '2026-03-28T00:00:00.000Z',
      '2026-03-29T00:00:00.000Z',
    ]);
  });

  it('lists subjects and group-by values, and flags events a meter cannot count', async () => {
    expect((await api('GET', '/api/v1/meters/tokens_total/subjects')).json()).toEqual(['acme', 'globex']);
    // Like OpenMeter: the last 24 hours by default, or the range given.
    expect((await api('GET', '/api/v1/meters/tokens_total/group-by/model/values')).json()).toEqual([]);
    const values = await api(
      'GET',
      '/api/v1/meters/tokens_total/group-by/model/values?from=2026-03-29T22:00:00Z',
    );
    expect(values.json()).toEqual(['gpt-4o-mini']);
    const early = await api(
      'GET',
      '/api/v1/meters/tokens_total/subjects?from=2026-03-29T00:00:00Z&to=2026-03-29T13:00:00Z',
    );
    expect(early.json()).toEqual(['globex']);
    expect(
      (await api('GET', '/api/v1/meters/tokens_total/subjects?from=2026-03-29T22:00:00Z')).json(),
    ).toEqual(['acme']);
    expect((await api('GET', '/api/v1/meters/tokens_total/group-by/nope/values')).statusCode).toBe(404);
    const listed = (await api('GET', '/api/v1/events?from=2026-03-01T00:00:00Z&subject=globex')).json() as {
      event: { time: string };
      validationError?: string;
    }[];
    const byTime = Object.fromEntries(listed.map((e) => [e.event.time, e.validationError]));
    expect(byTime['2026-03-29T12:00:00.000Z']).toBeUndefined();
    expect(byTime['2026-03-29T13:00:00.000Z']).toMatch(
      /tokens_total: value at \$\.usage\.input_tokens is not a number/,
    );
    expect(byTime['2026-03-29T14:00:00.000Z']).toMatch(/tokens_total: no value/);
  });

  it('refuses bad query parameters naming them', async () => {
    const cases: [string, number, string][] = [
      ['/api/v1/meters/nope/query', 404, ''],
      ['/api/v1/meters/tokens_total/query?windowSize=WEEK', 400, 'windowSize'],
      ['/api/v1/meters/tokens_total/query?windowTimeZone=Mars/Olympus', 400, 'windowTimeZone'],
      ['/api/v1/meters/tokens_total/query?from=yesterday', 400, 'from'],
      ['/api/v1/meters/tokens_total/query?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 400, 'to'],
      [
        '/api/v1/meters/tokens_total/query?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&windowSize=MINUTE',
        400,
        'windowSize',
      ],
      ['/api/v1/meters/tokens_total/query?groupBy=colour', 400, 'groupBy'],
      ['/api/v1/meters/tokens_total/query?filterGroupBy[colour]=red', 400, 'filterGroupBy'],
      // Keys every object inherits are no group-by either.
      ['/api/v1/meters/tokens_total/query?groupBy=constructor', 400, 'groupBy'],
      ['/api/v1/meters/tokens_total/query?groupBy=__proto__', 400, 'groupBy'],
      ['/api/v1/meters/tokens_total/query?filterGroupBy[toString]=x', 400, 'filterGroupBy'],
      ['/api/v1/meters/tokens_total/query?filterGroupBy[__proto__]=x', 400, 'filterGroupBy'],
      ['/api/v1/meters/tokens_total/group-by/constructor/values', 404, ''],
      ['/api/v1/meters/tokens_total/group-by/hasOwnProperty/values', 404, ''],
      // A time without Z or an offset would be read in the server's zone.
      ['/api/v1/meters/tokens_total/query?from=2026-01-01T00:00:00', 400, 'from'],
      ['/api/v1/meters/tokens_total/query?to=2026-01-01T00:00:00.000', 400, 'to'],
      ['/api/v1/meters/tokens_total/query?from=2026-01-01', 400, 'from'],
      ['/api/v1/meters/tokens_total/subjects?from=2026-01-01T00:00:00', 400, 'from'],
      ['/api/v1/meters/tokens_total/group-by/model/values?to=2026-01-01T00:00', 400, 'to'],
    ];
    for (const [url, status, field] of cases) {
      const res = await api('GET', url);
      expect(res.statusCode, url).toBe(status);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      if (field) expect(JSON.stringify(res.json().errors), url).toContain(field);
    }
    const posted: [unknown, string][] = [
      [{ groupBy: ['toString'] }, 'groupBy'],
      [{ filterGroupBy: { constructor: ['x'] } }, 'filterGroupBy'],
      [{ from: '2026-01-01T00:00:00' }, 'from'],
    ];
    for (const [body, field] of posted) {
      const res = await api('POST', '/api/v1/meters/tokens_total/query', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.json().errors), JSON.stringify(body)).toContain(field);
    }
    // Offsets other than Z keep working.
    const offset = await api(
      'GET',
      '/api/v1/meters/tokens_total/query?from=2026-03-28T01:00:00%2B01:00&to=2026-04-01T00:00:00.000-00:00',
    );
    expect(offset.statusCode, offset.body).toBe(200);
    expect(offset.json().from).toBe('2026-03-28T00:00:00.000Z');
  });

  it('treats hostile strings as data', async () => {
    const hostile = [
      "o'brien",
      'back\\slash',
      'nul\0byte',
      "'; DROP TABLE events; --",
      '/* c */',
      'x'.repeat(5000),
    ];
    for (const s of hostile) {
      const q = new URLSearchParams({ subject: s, groupBy: 'model', 'filterGroupBy[model]': s });
      const res = await api('GET', `/api/v1/meters/tokens_total/query?${q}`);
      expect(res.statusCode, s.slice(0, 20)).toBe(200);
      expect(res.json().data).toEqual([]);
    }
    expect((await api('GET', '/api/v1/meters/tokens_total/query')).json().data[0].value).toBe(1255.300000001);
  });
});

describe('namespaces', () => {
  it('never shows one namespace’s meters or usage to another, even with the same slug and events', async () => {
    const other = (await ctx.env.keys.create('globex')).key;
    const asOther = (method: 'GET' | 'POST', url: string, body?: unknown) =>
      ctx.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${other}` },
        ...(body ? { payload: body as object } : {}),
      });
    expect((await asOther('GET', '/api/v1/meters')).json()).toEqual([]);
    expect((await asOther('GET', '/api/v1/meters/tokens_total/query')).statusCode).toBe(404);
    expect((await asOther('POST', '/api/v1/meters', tokens)).statusCode).toBe(201);
    expect((await asOther('GET', '/api/v1/meters/tokens_total/query')).json().data).toEqual([]);
    expect((await asOther('GET', '/api/v1/meters/tokens_total/subjects')).json()).toEqual([]);
  });
});

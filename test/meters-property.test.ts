/**
 * Property test: usage queries agree exactly with an in-memory reference (test/support/usage-reference.ts).
 *
 * Float policy. A value is an exact decimal with 9 decimal places (ClickHouse Decimal128(38, 9)): a
 * JSON number is taken as the shortest decimal that round-trips its double (String(x)), a numeric
 * string as its own digits, either rounded half-to-even to 9 places; a numeric string of magnitude
 * 10^18 or more is not a number (a JSON number that large is refused at ingest: test/numbers.test.ts). Sums, extremes and the latest value are exact; the result is rounded to a double
 * once, at the end (AVG: the exact sum rounded once, then divided by the count). So every answer
 * must be the identical double, compared with toEqual.
 *
 * Each run uses its own event type, meter slug and event ids, so runs in the shared namespace do not
 * see each other's events. Set FC_SEED to replay a reported seed.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sink } from '../src/sink/service.ts';
import { createTestSink, eventually, postEvents, useTestApp } from './support/env.ts';
import {
  type RefAggregation,
  type RefEvent,
  type RefMeter,
  type RefQuery,
  type RefWindowSize,
  referenceUsage,
  storedEvents,
} from './support/usage-reference.ts';

const ctx = useTestApp();
let sink: Sink;

beforeAll(async () => {
  sink = createTestSink(ctx.env);
  await sink.start();
});

afterAll(async () => {
  await sink?.stop();
});

const SEED = Number(process.env.FC_SEED ?? 20_260_329);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 25);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Instants where something happens: DST changes and month ends. */
const ANCHORS = [
  '2026-03-29T01:00:00Z', // Europe/Paris springs forward
  '2025-10-26T01:00:00Z', // Europe/Paris falls back
  '2026-03-08T07:00:00Z', // America/New_York springs forward
  '2026-11-01T06:00:00Z', // America/New_York falls back
  '2026-04-04T15:00:00Z', // Australia/Lord_Howe falls back half an hour
  '2026-10-03T15:30:00Z', // Australia/Lord_Howe springs forward half an hour
  '2026-02-01T00:00:00Z', // a month end in UTC
  '2026-01-31T18:30:00Z', // a month end in Asia/Kolkata
  '2026-02-28T23:00:00Z', // a month end in Europe/Paris
].map((iso) => Date.parse(iso));

const ZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe'];
const SUBJECTS = ['acme', 'globex', 'Zeta', "o'brien", 'Émile', 'zoë'];
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o1'];
const AGGREGATIONS: RefAggregation[] = ['SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST'];
const WINDOWS: RefWindowSize[] = ['MINUTE', 'HOUR', 'DAY', 'MONTH'];

/** `arb` in about one case of 1 + `rarity`, otherwise undefined. */
function sometimes<T>(arb: fc.Arbitrary<T>, rarity = 3): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: rarity }, { arbitrary: arb, weight: 1 });
}

/** What an event carries at $.usage.tokens. */
type Value =
  | { kind: 'missing' }
  | { kind: 'usageNull' }
  | { kind: 'usageObject' }
  | { kind: 'leaf'; leaf: unknown };

/** An exact decimal n / 10^k as text. */
function decimalText(n: bigint, k: number): string {
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(k + 1, '0');
  const text = k === 0 ? digits : `${digits.slice(0, -k)}.${digits.slice(-k)}`;
  return negative ? `-${text}` : text;
}

const decimalArb = fc
  .record({
    n: fc.oneof(fc.bigInt({ min: -1000n, max: 1000n }), fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n })),
    k: fc.integer({ min: 0, max: 12 }),
    asString: fc.boolean(),
  })
  .map(({ n, k, asString }) => (asString ? decimalText(n, k) : Number(decimalText(n, k))));

const valueArb: fc.Arbitrary<Value> = fc.oneof(
  { arbitrary: decimalArb.map((leaf) => ({ kind: 'leaf' as const, leaf })), weight: 10 },
  {
    arbitrary: fc.integer({ min: -1_000_000_000_000_000, max: 1_000_000_000_000_000 }).map((leaf) => ({
      kind: 'leaf' as const,
      leaf,
    })),
    weight: 3,
  },
  {
    // Huge numeric strings (left out), tiny (rounds to 0), odd but numeric texts, and non-numbers.
    arbitrary: fc
      .constantFrom<unknown>(
        '1e25',
        '-3.5e24',
        '1000000000000000000',
        '999999999999999999.9999999999',
        '999999999999999999',
        '-1e30',
        1e-10,
        5e-10,
        0.1,
        0.2,
        -0,
        '1e3',
        '007',
        '-0.5',
        ' 12 ',
        '0.0000000015',
        '123456789012345678901234567.123456789',
        'n/a',
        '',
        'NaN',
        true,
      )
      .map((leaf) => ({ kind: 'leaf' as const, leaf })),
    weight: 3,
  },
  {
    arbitrary: fc.constantFrom<Value>(
      { kind: 'leaf', leaf: null },
      { kind: 'missing' },
      { kind: 'usageNull' },
      { kind: 'usageObject' },
    ),
    weight: 3,
  },
);

/** A group-by value: a model name, missing, or something odd. */
const modelArb = fc.oneof(
  { arbitrary: fc.constantFrom(...MODELS), weight: 8 },
  {
    arbitrary: fc.constantFrom<unknown>(null, undefined, 4, 'gpt-4o '),
    weight: 2,
  },
);

type GenEvent = {
  subject: number;
  source: string;
  /**
   * Offset from the anchor, as a fraction of the span (millionths), or a half-hour boundary ± 1 ms;
   * or the time of an earlier event (ties decide LATEST by source and id).
   */
  offset: Offset | { sameAs: number };
  value: Value;
  model: unknown;
  tier: string | undefined;
  /** Send the time with a local UTC offset instead of Z. */
  zone: string | undefined;
};

type Offset = { fraction: number } | { halfHours: number; nudge: number };

const offsetArb: fc.Arbitrary<Offset> = fc.oneof(
  fc.record({ fraction: fc.integer({ min: -1_000_000, max: 1_000_000 }) }),
  fc.record({ halfHours: fc.integer({ min: -150, max: 150 }), nudge: fc.constantFrom(-1, 0, 0, 1) }),
);

const eventArb: fc.Arbitrary<GenEvent> = fc.record({
  subject: fc.nat(2),
  source: fc.constantFrom('src-a', 'src-b'),
  offset: fc.oneof(
    { arbitrary: offsetArb, weight: 4 },
    { arbitrary: fc.record({ sameAs: fc.nat() }), weight: 1 },
  ),
  value: valueArb,
  model: modelArb,
  tier: fc.option(fc.constantFrom('pro', 'free'), { nil: undefined }),
  zone: sometimes(fc.constantFrom(...ZONES), 1),
});

/** A later copy of event `index`: the same identity, with other time, subject or data. */
const copyArb = fc.record({
  index: fc.nat(),
  identical: fc.boolean(),
  shift: fc.integer({ min: -2 * HOUR, max: 2 * HOUR }),
  subject: fc.nat(2),
  value: valueArb,
  model: modelArb,
});

const queryArb = fc.record({
  aggregation: fc.constantFrom(...AGGREGATIONS),
  windowSize: fc.option(fc.constantFrom(...WINDOWS), { nil: undefined }),
  timeZone: fc.constantFrom(...ZONES),
  groupBy: fc.shuffledSubarray(['subject', 'model', 'tier']),
  subjectFilter: sometimes(fc.subarray([0, 1, 2], { minLength: 1 })),
  modelFilter: sometimes(fc.subarray([...MODELS, '4'], { minLength: 1 })),
  /** Query range: all the events (default), or between two generated instants. */
  range: sometimes(fc.tuple(offsetArb, offsetArb)),
  eventFrom: sometimes(offsetArb),
  countHasValue: fc.boolean(),
});

const scenarioArb = fc.record({
  anchor: fc.constantFrom(...ANCHORS),
  span: fc.constantFrom(2 * HOUR, 3 * DAY),
  subjects: fc.shuffledSubarray(SUBJECTS, { minLength: 1, maxLength: 3 }),
  events: fc.array(eventArb, { minLength: 1, maxLength: 60, size: 'max' }),
  /** Indexes of events repeated, identical, inside the first request. */
  repeats: fc.array(fc.nat(), { maxLength: 5 }),
  copies: fc.array(copyArb, { maxLength: 6 }),
  /** New events with old times, sent last. */
  late: fc.array(eventArb, { maxLength: 5 }),
  query: queryArb,
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function timeText(ms: number, zone: string | undefined): string {
  if (!zone) return new Date(ms).toISOString();
  return DateTime.fromMillis(ms, { zone }).toISO({ suppressMilliseconds: false }) ?? '';
}

function dataOf(value: Value, model: unknown, tier: string | undefined): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (model !== undefined) data.model = model;
  if (tier !== undefined) data['customer tier'] = tier;
  switch (value.kind) {
    case 'missing':
      data.usage = { other: 1 };
      break;
    case 'usageNull':
      data.usage = null;
      break;
    case 'usageObject':
      data.usage = { tokens: { input: 5 } };
      break;
    case 'leaf':
      data.usage = { tokens: value.leaf };
  }
  return data;
}

type Wire = RefEvent & { wireTime: string };

function toWire(event: Wire) {
  return {
    specversion: '1.0',
    id: event.id,
    source: event.source,
    type: event.type,
    subject: event.subject,
    time: event.wireTime,
    data: event.data,
  };
}

let run = 0;
const tag = `${Date.now().toString(36)}`;

function api(method: 'GET' | 'POST', url: string, body?: unknown) {
  return ctx.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ctx.key}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

/** Sends the events (in requests of at most 1000) and waits until the sink has stored them. */
async function send(events: readonly Wire[]) {
  for (let i = 0; i < events.length; i += 1000) {
    const res = await postEvents(ctx.app, ctx.key, events.slice(i, i + 1000).map(toWire));
    expect(res.statusCode, res.body).toBe(204);
  }
  await eventually(
    async () => (await ctx.env.log.lag(ctx.env.config.sink.consumerGroup)) === 0,
    'sink to drain',
  );
}

async function check(scenario: Scenario) {
  run += 1;
  const type = `prop-${tag}-${run}`;
  const slug = `prop_${tag}_${run}`;
  const { anchor, span, subjects, query: q } = scenario;
  const at = (offset: Offset) => {
    const raw =
      'fraction' in offset
        ? (offset.fraction * span) / 1_000_000
        : offset.halfHours * HOUR * 0.5 + offset.nudge;
    return anchor + Math.max(-span, Math.min(span, Math.round(raw)));
  };
  const subjectOf = (i: number) => subjects[i % subjects.length] as string;
  const make = (id: string, e: GenEvent, time: number): Wire => ({
    id,
    source: e.source,
    type,
    subject: subjectOf(e.subject),
    time,
    wireTime: timeText(time, e.zone),
    data: dataOf(e.value, e.model, e.tier),
  });

  const firsts: Wire[] = [];
  for (const [i, e] of scenario.events.entries()) {
    const time = 'sameAs' in e.offset ? (firsts[e.offset.sameAs % i]?.time ?? anchor) : at(e.offset);
    firsts.push(make(`${tag}-${run}-${i}`, e, time));
  }
  const repeats = scenario.repeats.map((i) => firsts[i % firsts.length] as Wire);
  // Request 1: the events, some repeated verbatim. Request 2: later copies (first copy wins) and
  // late arrivals with old times.
  const request1 = [...firsts, ...repeats];
  const copied = new Set<number>();
  const copies: Wire[] = [];
  for (const c of scenario.copies) {
    const index = c.index % firsts.length;
    if (copied.has(index)) continue;
    copied.add(index);
    const original = firsts[index] as Wire;
    if (c.identical) copies.push(original);
    else {
      const time = Math.max(0, original.time + c.shift);
      copies.push({
        ...original,
        subject: subjectOf(c.subject),
        time,
        wireTime: new Date(time).toISOString(),
        data: dataOf(c.value, c.model, undefined),
      });
    }
  }
  const late = scenario.late.map((e, i) => {
    const offset = 'sameAs' in e.offset ? { fraction: 0 } : e.offset;
    const time = anchor - span + Math.round(Math.abs(at(offset) - anchor) / 4);
    return make(`${tag}-${run}-late-${i}`, e, time);
  });
  await send(request1);
  await send([...copies, ...late]);

  const meterBody = {
    slug,
    aggregation: q.aggregation,
    eventType: type,
    ...(q.aggregation !== 'COUNT' || q.countHasValue ? { valueProperty: '$.usage.tokens' } : {}),
    groupBy: { model: '$.model', tier: "$['customer tier']" },
    ...(q.eventFrom !== undefined ? { eventFrom: new Date(at(q.eventFrom)).toISOString() } : {}),
  };
  const created = await api('POST', '/api/v1/meters', meterBody);
  expect(created.statusCode, created.body).toBe(201);

  let from = anchor - span - HOUR - 7;
  let to = anchor + span + HOUR + 11;
  if (q.range) {
    const [a, b] = q.range.map(at) as [number, number];
    from = Math.min(a, b);
    to = Math.max(a, b) + (a === b ? 1 : 0);
  }
  const groupBy = q.groupBy;
  const body = {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    ...(q.windowSize ? { windowSize: q.windowSize } : {}),
    windowTimeZone: q.timeZone,
    groupBy,
    ...(q.subjectFilter ? { subject: q.subjectFilter.map(subjectOf) } : {}),
    ...(q.modelFilter ? { filterGroupBy: { model: q.modelFilter } } : {}),
  };
  const res = await api('POST', `/api/v1/meters/${slug}/query`, body);
  if (q.windowSize === 'HOUR' && q.timeZone === 'Australia/Lord_Howe') {
    // Refused by design: ClickHouse 18.16 misplaces hour starts around half-hour DST shifts.
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().errors[0].field).toBe('windowTimeZone');
    return;
  }
  expect(res.statusCode, res.body).toBe(200);

  const meter: RefMeter = {
    aggregation: q.aggregation,
    eventType: type,
    ...(meterBody.valueProperty ? { valueProperty: meterBody.valueProperty } : {}),
    groupBy: meterBody.groupBy,
    ...(meterBody.eventFrom ? { eventFrom: Date.parse(meterBody.eventFrom) } : {}),
  };
  const query: RefQuery = {
    from,
    to,
    ...(q.windowSize ? { windowSize: q.windowSize } : {}),
    timeZone: q.timeZone,
    groupBy,
    ...(body.subject ? { subjects: body.subject } : {}),
    ...(body.filterGroupBy ? { filterGroupBy: body.filterGroupBy } : {}),
  };
  const stored = storedEvents([...request1, ...copies, ...late]);
  const expected = referenceUsage(stored, meter, query);
  expect(res.json().data, JSON.stringify({ meter: meterBody, query: body })).toEqual(expected);
}

describe('usage queries (property)', () => {
  it('agree exactly with the in-memory reference', { timeout: 300_000 }, async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, check), {
      seed: SEED,
      numRuns: NUM_RUNS,
      interruptAfterTimeLimit: 240_000,
      markInterruptAsFailure: true,
    });
  });
});

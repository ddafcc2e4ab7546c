import { DateTime, IANAZone } from 'luxon';
import type { ClickHouse } from '../clickhouse/client.ts';
import { identifier, join, sql } from '../clickhouse/sql.ts';
import type { Db } from '../db/client.ts';
import { flattenData, type LogEvent, NUMERIC_KINDS } from '../events/event.ts';
import { AppError } from '../lib/errors.ts';
import {
  canonicalPath,
  DateTimeWithOffset,
  type Meter,
  type MeterCreate,
  type MeterUpdate,
  NUMERIC_AGGREGATIONS,
  type WindowSize,
} from './meter.ts';
import { buildUsageQuery, type UsageQuery, type UsageRow } from './query.ts';
import { createMeterStore } from './store.ts';

export type MeterService = ReturnType<typeof createMeterService>;

/** A query as the API receives it, before validation against the meter. */
export type UsageQueryInput = {
  from?: string;
  to?: string;
  windowSize?: WindowSize;
  windowTimeZone?: string;
  subject?: string[];
  groupBy?: string[];
  filterGroupBy?: Record<string, string[]>;
};

export type UsageResult = {
  from?: string;
  to?: string;
  windowSize?: WindowSize;
  data: {
    value: number;
    windowStart: string;
    windowEnd: string;
    subject: string | null;
    groupBy: Record<string, string | null>;
  }[];
};

const WINDOW_MS: Record<WindowSize, number> = {
  MINUTE: 60_000,
  HOUR: 3_600_000,
  DAY: 86_400_000,
  MONTH: 28 * 86_400_000, // the shortest month: an upper bound on the window count
};

const LUXON_UNIT = { MINUTE: 'minutes', HOUR: 'hours', DAY: 'days', MONTH: 'months' } as const;

/** Whether a zone's UTC offset ever changes by other than whole hours (within a few years of now). */
export function hasPartHourShift(timeZone: string): boolean {
  const known = partHourShift.get(timeZone);
  if (known !== undefined) return known;
  const zone = IANAZone.create(timeZone);
  const start = Date.now() - 2 * 365 * 86_400_000;
  let previous = zone.offset(start);
  for (let t = start; t < start + 5 * 365 * 86_400_000; t += 86_400_000) {
    const offset = zone.offset(t);
    if (offset !== previous && Math.abs(offset - previous) % 60 !== 0) {
      partHourShift.set(timeZone, true);
      return true;
    }
    previous = offset;
  }
  partHourShift.set(timeZone, false);
  return false;
}
const partHourShift = new Map<string, boolean>();

/** The end of a window: the next local boundary (a DST day lasts 23 or 25 hours). */
export function windowEnd(startMs: number, size: WindowSize, timeZone: string): number {
  // Luxon adds minutes and hours as elapsed time; only days and months follow the calendar.
  if (size === 'MINUTE' || size === 'HOUR' || (size === 'DAY' && timeZone === 'UTC')) {
    return startMs + WINDOW_MS[size];
  }
  return DateTime.fromMillis(startMs, { zone: timeZone })
    .plus({ [LUXON_UNIT[size]]: 1 })
    .toMillis();
}

const badParameter = (parameter: string, message: string): never => {
  throw new AppError('ML_ERR_HTTP_BAD_REQUEST', `${parameter}: ${message}`, {
    errors: [{ field: parameter, message }],
  });
};

function parseTime(parameter: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  // Without an offset, Date.parse would read the time in the server's zone.
  if (!DateTimeWithOffset.safeParse(text).success) {
    return badParameter(parameter, 'not an RFC 3339 date-time with Z or an offset');
  }
  return Date.parse(text);
}

/**
 * The IANA spelling of a zone. Luxon accepts any case (europe/paris) but ClickHouse does not; ICU
 * also maps links to its canonical names (Asia/Kolkata to Asia/Calcutta), all known to ClickHouse 18.16.
 */
function canonicalZone(timeZone: string): string {
  const known = canonicalZones.get(timeZone);
  if (known) return known;
  let canonical: string;
  try {
    canonical = Intl.DateTimeFormat(undefined, { timeZone }).resolvedOptions().timeZone;
  } catch {
    return badParameter('windowTimeZone', `unknown time zone ${JSON.stringify(timeZone)}`);
  }
  // Valid names only, but their case varies freely: bounded.
  if (canonicalZones.size >= 1_000) canonicalZones.clear();
  canonicalZones.set(timeZone, canonical);
  return canonical;
}

/** Building an Intl.DateTimeFormat costs ~0.2 ms, a tenth of a one-subject query's server time. */
const canonicalZones = new Map<string, string>();

export type TimeRangeInput = { from?: string; to?: string };

function parseRange(range: TimeRangeInput): { from?: number; to?: number } {
  const from = parseTime('from', range.from);
  const to = parseTime('to', range.to);
  if (from !== undefined && to !== undefined && from >= to) badParameter('to', 'must be after from');
  return { from, to };
}

/** The events of a meter's type in [from, to), by the primary key's time column first. */
function meterEvents(meter: Meter, range: { from?: number; to?: number }) {
  const parts = [sql`namespace = ${meter.namespace}`, sql`type = ${meter.eventType}`];
  if (range.from !== undefined) parts.push(sql`time_ms >= ${range.from}`);
  if (range.to !== undefined) parts.push(sql`time_ms < ${range.to}`);
  return join(parts, ' AND ');
}

/** Meters (PostgreSQL) and their usage (ClickHouse). */
export function createMeterService(deps: { db: Db; ch: ClickHouse }, options: { maxWindows: number }) {
  const store = createMeterStore(deps.db);

  async function get(namespace: string, idOrSlug: string): Promise<Meter> {
    const meter = await store.get(namespace, idOrSlug);
    if (!meter) throw new AppError('ML_ERR_HTTP_NOT_FOUND', `no meter ${JSON.stringify(idOrSlug)}`);
    return meter;
  }

  function validateQuery(meter: Meter, input: UsageQueryInput): UsageQuery {
    const { from, to } = parseRange(input);
    const timeZone = canonicalZone(input.windowTimeZone ?? 'UTC');
    if (input.windowSize === 'HOUR' && hasPartHourShift(timeZone)) {
      // ClickHouse 18.16 places hour starts 30 minutes off around such shifts (Australia/Lord_Howe):
      // refusing beats answering with overlapping windows.
      badParameter(
        'windowTimeZone',
        `HOUR windows are not supported in ${timeZone}, whose clocks shift by part of an hour`,
      );
    }
    // As in OpenMeter, a subject filter also groups by subject.
    const groupBy = [...new Set([...(input.subject?.length ? ['subject'] : []), ...(input.groupBy ?? [])])];
    for (const key of groupBy) {
      if (key !== 'subject' && !Object.hasOwn(meter.groupBy, key)) {
        badParameter('groupBy', `meter ${meter.slug} has no group-by ${JSON.stringify(key)}`);
      }
    }
    const filterGroupBy = input.filterGroupBy ?? {};
    for (const key of Object.keys(filterGroupBy)) {
      if (!Object.hasOwn(meter.groupBy, key))
        badParameter('filterGroupBy', `meter ${meter.slug} has no group-by ${JSON.stringify(key)}`);
    }
    return {
      from,
      to,
      windowSize: input.windowSize,
      timeZone,
      subjects: input.subject,
      groupBy,
      filterGroupBy,
    };
  }

  // Zones this ClickHouse loaded or refused, by canonical name (ICU's names: a bounded set).
  const clickHouseZones = new Map<string, boolean>();

  /**
   * ICU and ClickHouse's tzdata disagree on a few names (18.16 cannot load SystemV/AST4, which
   * ICU accepts): ask ClickHouse once per zone, so such a zone is a 400 naming windowTimeZone and
   * not a failed query. A failure other than "cannot load" (ClickHouse down) is not remembered.
   */
  async function requireClickHouseZone(timeZone: string): Promise<void> {
    if (timeZone === 'UTC') return;
    let loads = clickHouseZones.get(timeZone);
    if (loads === undefined) {
      try {
        await deps.ch.query(sql`SELECT toStartOfDay(now(), ${timeZone}) AS d`);
        loads = true;
      } catch (err) {
        if (!/Cannot load time zone/i.test((err as Error).message ?? '')) throw err;
        loads = false;
      }
      clickHouseZones.set(timeZone, loads);
    }
    if (!loads) badParameter('windowTimeZone', `time zone ${timeZone} is not available in ClickHouse`);
  }

  async function firstEventTime(meter: Meter): Promise<number | undefined> {
    const db = identifier(deps.ch.database);
    const [row] = await deps.ch.query<{ t: string; n: string }>(
      sql`SELECT toString(min(time_ms)) AS t, toString(count()) AS n FROM ${db}.events
          WHERE namespace = ${meter.namespace} AND type = ${meter.eventType}`,
    );
    return row && Number(row.n) > 0 ? Number(row.t) : undefined;
  }

  return {
    list: (namespace: string, includeDeleted = false) => store.list(namespace, { includeDeleted }),
    get,

    async create(namespace: string, input: MeterCreate): Promise<Meter> {
      const meter = await store.insert(namespace, input);
      if (!meter) {
        throw new AppError(
          'ML_ERR_METER_CONFLICT',
          `a meter with slug ${JSON.stringify(input.slug)} already exists`,
        );
      }
      return meter;
    },

    async update(namespace: string, idOrSlug: string, input: MeterUpdate): Promise<Meter> {
      const meter = await get(namespace, idOrSlug);
      return (await store.update(meter.id, input)) ?? get(namespace, idOrSlug);
    },

    async remove(namespace: string, idOrSlug: string): Promise<void> {
      const meter = await get(namespace, idOrSlug);
      await store.softDelete(meter.id);
    },

    /** Usage of one meter: exact aggregates per window, subject and group. */
    async query(namespace: string, idOrSlug: string, input: UsageQueryInput): Promise<UsageResult> {
      const meter = await get(namespace, idOrSlug);
      const query = validateQuery(meter, input);
      await requireClickHouseZone(query.timeZone);
      if (query.windowSize) {
        const start = query.from ?? (await firstEventTime(meter)) ?? Date.now();
        const windows = Math.ceil(((query.to ?? Date.now()) - start) / WINDOW_MS[query.windowSize]);
        if (windows > options.maxWindows) {
          badParameter(
            'windowSize',
            `the range holds about ${windows} ${query.windowSize} windows; the limit is ${options.maxWindows}`,
          );
        }
      }
      const rows = await deps.ch.query<UsageRow>(buildUsageQuery(deps.ch.database, meter, query));
      const groupKeys = query.groupBy.filter((key) => key !== 'subject');
      const data = rows
        .filter((row) => Number(row.events) > 0)
        .map((row) => {
          let start: number;
          let end: number;
          if (query.windowSize) {
            start = Number(row.window_start) * 1000;
            end = windowEnd(start, query.windowSize, query.timeZone);
          } else {
            start = query.from ?? Number(row.min_time_ms);
            end = query.to ?? Number(row.max_time_ms) + 1;
          }
          const value =
            meter.aggregation === 'AVG' ? Number(row.value) / Number(row.events) : Number(row.value);
          return {
            value,
            windowStart: new Date(start).toISOString(),
            windowEnd: new Date(end).toISOString(),
            subject: query.groupBy.includes('subject') ? (row.subject ?? null) : null,
            groupBy: Object.fromEntries(groupKeys.map((key, i) => [key, row[`g${i}`] ?? null])),
          };
        });
      return {
        ...(query.from !== undefined ? { from: new Date(query.from).toISOString() } : {}),
        ...(query.to !== undefined ? { to: new Date(query.to).toISOString() } : {}),
        ...(query.windowSize ? { windowSize: query.windowSize } : {}),
        data,
      };
    },

    /** Subjects that sent events of the meter's type, optionally within [from, to). */
    async subjects(namespace: string, idOrSlug: string, range: TimeRangeInput = {}): Promise<string[]> {
      const meter = await get(namespace, idOrSlug);
      const db = identifier(deps.ch.database);
      const rows = await deps.ch.query<{ subject: string }>(
        sql`SELECT DISTINCT subject FROM ${db}.events WHERE ${meterEvents(meter, parseRange(range))} ORDER BY subject`,
      );
      return rows.map((r) => r.subject);
    },

    /** Distinct values of one group-by key; as in OpenMeter, the last 24 hours unless a range is given. */
    async groupByValues(namespace: string, idOrSlug: string, key: string, range: TimeRangeInput = {}) {
      const meter = await get(namespace, idOrSlug);
      const path = Object.hasOwn(meter.groupBy, key) ? canonicalPath(meter.groupBy[key] ?? '') : null;
      if (!path) {
        throw new AppError(
          'ML_ERR_HTTP_NOT_FOUND',
          `meter ${meter.slug} has no group-by ${JSON.stringify(key)}`,
        );
      }
      const bounds = parseRange(range);
      if (bounds.from === undefined && bounds.to === undefined) bounds.from = Date.now() - 86_400_000;
      const db = identifier(deps.ch.database);
      const rows = await deps.ch.query<{ v: string }>(
        sql`SELECT DISTINCT data_values[i] AS v FROM (
              SELECT data_values, indexOf(data_paths, ${path}) AS i FROM ${db}.events
              WHERE ${meterEvents(meter, bounds)})
            WHERE i > 0 ORDER BY v`,
      );
      return rows.map((r) => r.v);
    },

    /**
     * Why an event will not count for a meter of its type, as OpenMeter reports it on the events
     * list: a numeric meter whose value is missing or not a number.
     */
    async validationErrors(namespace: string, events: readonly LogEvent[]): Promise<Map<LogEvent, string>> {
      const meters = (await store.list(namespace)).filter(
        (m) => NUMERIC_AGGREGATIONS.includes(m.aggregation) && m.valueProperty,
      );
      const errors = new Map<LogEvent, string>();
      if (meters.length === 0) return errors;
      for (const event of events) {
        const relevant = meters.filter((m) => m.eventType === event.type);
        if (relevant.length === 0) continue;
        const flat = flattenData(event.data);
        const problems = relevant.flatMap((meter) => {
          const path = canonicalPath(meter.valueProperty ?? '') ?? '';
          const i = flat.paths.indexOf(path);
          if (i < 0) return [`meter ${meter.slug}: no value at ${meter.valueProperty}`];
          const kind = flat.kinds[i] as (typeof NUMERIC_KINDS)[number];
          return NUMERIC_KINDS.includes(kind)
            ? []
            : [`meter ${meter.slug}: value at ${meter.valueProperty} is not a number`];
        });
        if (problems.length > 0) errors.set(event, problems.join('; '));
      }
      return errors;
    },
  };
}

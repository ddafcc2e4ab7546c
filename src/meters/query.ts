import { dateTimeSeconds, identifier, join, type Sql, sql } from '../clickhouse/sql.ts';
import { DataKind, NUMERIC_KINDS } from '../events/event.ts';
import {
  type Aggregation,
  canonicalPath,
  type Meter,
  NUMERIC_AGGREGATIONS,
  type WindowSize,
} from './meter.ts';

/** A usage query after validation: times in epoch ms, `to` exclusive, group keys known to the meter. */
export type UsageQuery = {
  from?: number;
  to?: number;
  windowSize?: WindowSize;
  timeZone: string;
  subjects?: string[];
  /** Meter group-by keys and/or 'subject', in the order the caller asked. */
  groupBy: string[];
  filterGroupBy: Record<string, string[]>;
};

/** One result row as ClickHouse returns it: aggregates as exact decimal text. */
export type UsageRow = {
  window_start?: number | string;
  min_time_ms?: string;
  max_time_ms?: string;
  subject?: string;
  /** Exact decimal aggregates arrive as JSON numbers, counts as strings. */
  value: number | string;
  events: string;
} & Record<`g${number}`, string | null>;

/** Window start in seconds since the epoch, in the query's time zone (midnights follow DST). */
function windowStart(size: WindowSize, tz: string): Sql {
  switch (size) {
    case 'MINUTE':
      return sql`toUnixTimestamp(toStartOfMinute(time))`;
    case 'HOUR':
      return sql`toUnixTimestamp(toStartOfHour(time, ${tz}))`;
    case 'DAY':
      return sql`toUnixTimestamp(toStartOfDay(time, ${tz}))`;
    case 'MONTH':
      return sql`toUnixTimestamp(toDateTime(toStartOfMonth(time, ${tz}), ${tz}))`;
  }
}

/**
 * Exact aggregates: sums and extremes of Decimal128 values, counts as integers. AVG is returned as
 * its exact sum; the service divides by `events` once. Decimals are left to the JSON output, which
 * writes the exact literal: 18.16's toString(Decimal128) garbles values of 10^21 and more.
 */
function aggregate(aggregation: Aggregation, decimal: Sql, text: Sql): Sql {
  switch (aggregation) {
    case 'SUM':
    case 'AVG':
      return sql`sum(${decimal})`;
    case 'MIN':
      return sql`min(${decimal})`;
    case 'MAX':
      return sql`max(${decimal})`;
    case 'LATEST':
      // The value of the latest event; ties in time broken by identity so the answer is stable.
      return sql`argMax(${decimal}, (time_ms, source, id))`;
    case 'COUNT':
      return sql`toString(count())`;
    case 'UNIQUE_COUNT':
      return sql`toString(uniqExact(${text}))`;
  }
}

/**
 * The SQL for one meter query. It reads the flattened value and group-by paths with indexOf, so
 * no row's JSON is parsed, and reads through FINAL, so a copy of an event never counts twice.
 */
export function buildUsageQuery(database: string, meter: Meter, query: UsageQuery): Sql {
  const db = identifier(database);
  const valuePath = meter.valueProperty ? canonicalPath(meter.valueProperty) : null;
  const groupKeys = query.groupBy.filter((key) => key !== 'subject');
  const bySubject = query.groupBy.includes('subject');
  // Every group key that is grouped or filtered needs its value extracted.
  const extracted = [...new Set([...groupKeys, ...Object.keys(query.filterGroupBy)])];
  // Own keys only: `constructor` and the like are no group-by of any meter.
  const pathOf = (key: string) =>
    Object.hasOwn(meter.groupBy, key) ? (canonicalPath(meter.groupBy[key] ?? '') ?? '') : '';

  const where: Sql[] = [sql`namespace = ${meter.namespace}`, sql`type = ${meter.eventType}`];
  const from = Math.max(query.from ?? 0, meter.eventFrom?.getTime() ?? 0);
  // time is time_ms in whole seconds, so a bound on a whole second needs only the seconds column;
  // and `time < to` (not `<=`) leaves the partition that starts at `to` unread.
  const whole = (ms: number) => dateTimeSeconds(ms) * 1000 === ms;
  if (from > 0) {
    where.push(sql`time >= toDateTime(${dateTimeSeconds(from)}, 'UTC')`);
    if (!whole(from)) where.push(sql`time_ms >= ${from}`);
  }
  if (query.to !== undefined) {
    if (whole(query.to)) where.push(sql`time < toDateTime(${dateTimeSeconds(query.to)}, 'UTC')`);
    else where.push(sql`time <= toDateTime(${dateTimeSeconds(query.to)}, 'UTC')`, sql`time_ms < ${query.to}`);
  }
  // PREWHERE reads the wide columns only for the subjects' rows of the granules the key selects.
  // Exact under FINAL: all copies of an event share the sort key, subject included.
  const prewhere = query.subjects?.length ? sql` PREWHERE subject IN ${query.subjects}` : sql``;

  // One level: WHERE under FINAL filters the collapsed rows, as the outer query did; ClickHouse
  // computes each repeated expression once per block.
  const valueIndex = sql`indexOf(data_paths, ${valuePath ?? ''})`;
  const valueKind = sql`data_kinds[${valueIndex}]`;
  const valueDecimal = sql`data_decimals[${valueIndex}]`;
  const valueText = sql`data_values[${valueIndex}]`;
  const groupIndex = (i: number) => sql`indexOf(data_paths, ${pathOf(extracted[i] ?? '')})`;
  const groupValue = (i: number) => sql`data_values[${groupIndex(i)}]`;
  const groupKind = (i: number) => sql`data_kinds[${groupIndex(i)}]`;

  if (valuePath && NUMERIC_AGGREGATIONS.includes(meter.aggregation)) {
    where.push(sql`${valueIndex} > 0`, sql`${valueKind} IN ${[...NUMERIC_KINDS]}`);
  } else if (valuePath && meter.aggregation === 'UNIQUE_COUNT') {
    where.push(sql`${valueIndex} > 0`, sql`${valueKind} != ${DataKind.null}`);
  }
  for (const [key, values] of Object.entries(query.filterGroupBy)) {
    const i = extracted.indexOf(key);
    where.push(sql`${groupIndex(i)} > 0`, sql`${groupValue(i)} IN ${values}`);
  }

  const select: Sql[] = [];
  const groups: Sql[] = [];
  if (query.windowSize) {
    select.push(sql`${windowStart(query.windowSize, query.timeZone)} AS window_start`);
    groups.push(sql`window_start`);
  } else {
    select.push(sql`toString(min(time_ms)) AS min_time_ms`, sql`toString(max(time_ms)) AS max_time_ms`);
  }
  if (bySubject) {
    select.push(sql`subject`);
    groups.push(sql`subject`);
  }
  for (const key of groupKeys) {
    const i = extracted.indexOf(key);
    const out = identifier(`g${groupKeys.indexOf(key)}`);
    // A missing or JSON-null group-by value is null, not an empty string.
    const present = sql`${groupIndex(i)} > 0 AND ${groupKind(i)} != ${DataKind.null}`;
    select.push(sql`if(${present}, ${groupValue(i)}, NULL) AS ${out}`);
    groups.push(out);
  }
  select.push(
    sql`${aggregate(meter.aggregation, valueDecimal, valueText)} AS value`,
    sql`toString(count()) AS events`,
  );

  const grouping =
    groups.length > 0 ? sql` GROUP BY ${join(groups, ', ')} ORDER BY ${join(groups, ', ')}` : sql``;
  return sql`SELECT ${join(select, ', ')}
FROM ${db}.events FINAL${prewhere} WHERE ${join(where, ' AND ')}${grouping}`;
}

import { describe, expect, it } from 'vitest';
import type { Meter } from './meter.ts';
import { buildUsageQuery } from './query.ts';

const meter: Meter = {
  id: '01J0000000000000000000000M',
  namespace: 'acme',
  slug: 'tokens',
  name: 'Tokens',
  description: null,
  metadata: null,
  aggregation: 'SUM',
  eventType: 'ai-tokens',
  eventFrom: null,
  valueProperty: '$.usage.tokens',
  groupBy: { model: '$.model' },
  createdAt: new Date(0),
  updatedAt: new Date(0),
  deletedAt: null,
};

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

describe('buildUsageQuery', () => {
  it('reads one subject’s month by day through FINAL, by path, with exact bounds', () => {
    const sql = buildUsageQuery('db', meter, {
      from: Date.parse('2026-03-01T00:00:00Z'),
      to: Date.parse('2026-04-01T00:00:00Z'),
      windowSize: 'DAY',
      timeZone: 'Europe/Paris',
      subjects: ["o'brien"],
      groupBy: ['subject'],
      filterGroupBy: {},
    });
    expect(oneLine(sql.text)).toBe(
      oneLine(`SELECT toUnixTimestamp(toStartOfDay(time, 'Europe/Paris')) AS window_start, subject,
        sum(value_decimal) AS value, toString(count()) AS events
      FROM (SELECT time, time_ms, subject, source, id, indexOf(data_paths, '$.usage.tokens') AS value_index,
        data_kinds[value_index] AS value_kind, data_decimals[value_index] AS value_decimal,
        data_values[value_index] AS value_text
        FROM db.events FINAL PREWHERE subject IN ('o\\'brien') WHERE namespace = 'acme' AND type = 'ai-tokens'
        AND time >= toDateTime(1772323200, 'UTC') AND time_ms >= 1772323200000
        AND time <= toDateTime(1775001600, 'UTC') AND time_ms < 1775001600000)
      WHERE value_index > 0 AND value_kind IN (2, 5)
      GROUP BY window_start, subject ORDER BY window_start, subject`),
    );
  });

  it('groups and filters by a group-by path, and counts without reading a value', () => {
    const sql = buildUsageQuery(
      'db',
      { ...meter, aggregation: 'COUNT', valueProperty: null },
      { timeZone: 'UTC', groupBy: ['model'], filterGroupBy: { model: ['a', 'b'] } },
    );
    expect(oneLine(sql.text)).toBe(
      oneLine(`SELECT toString(min(time_ms)) AS min_time_ms, toString(max(time_ms)) AS max_time_ms,
        if(gi0 > 0 AND gk0 != 0, gv0, NULL) AS g0, toString(count()) AS value, toString(count()) AS events
      FROM (SELECT time, time_ms, subject, source, id, indexOf(data_paths, '$.model') AS gi0, data_values[gi0] AS gv0,
        data_kinds[gi0] AS gk0
        FROM db.events FINAL WHERE namespace = 'acme' AND type = 'ai-tokens')
      WHERE gi0 > 0 AND gv0 IN ('a', 'b')
      GROUP BY g0 ORDER BY g0`),
    );
  });
});

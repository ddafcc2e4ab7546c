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

const oneLine = (text: string) => text.replace(/\s+/g, ' ').replace(/\( /g, '(').trim();

describe('buildUsageQuery', () => {
  it('reads one subject’s month by day through FINAL, subject in PREWHERE, whole-second bounds on the key column', () => {
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
        sum(data_decimals[indexOf(data_paths, '$.usage.tokens')]) AS value, toString(count()) AS events
      FROM db.events FINAL PREWHERE subject IN ('o\\'brien')
      WHERE namespace = 'acme' AND type = 'ai-tokens'
        AND time >= toDateTime(1772323200, 'UTC') AND time < toDateTime(1775001600, 'UTC')
        AND indexOf(data_paths, '$.usage.tokens') > 0 AND data_kinds[indexOf(data_paths, '$.usage.tokens')] IN (2, 5)
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
        if(indexOf(data_paths, '$.model') > 0 AND data_kinds[indexOf(data_paths, '$.model')] != 0,
           data_values[indexOf(data_paths, '$.model')], NULL) AS g0,
        toString(count()) AS value, toString(count()) AS events
      FROM db.events FINAL WHERE namespace = 'acme' AND type = 'ai-tokens'
        AND indexOf(data_paths, '$.model') > 0 AND data_values[indexOf(data_paths, '$.model')] IN ('a', 'b')
      GROUP BY g0 ORDER BY g0`),
    );
  });

  it('bounds to the millisecond when from or to is not a whole second', () => {
    const text = buildUsageQuery('db', meter, {
      from: Date.parse('2026-03-01T00:00:00.250Z'),
      to: Date.parse('2026-03-02T00:00:00.750Z'),
      timeZone: 'UTC',
      groupBy: [],
      filterGroupBy: {},
    }).text;
    expect(text).toContain("time >= toDateTime(1772323200, 'UTC') AND time_ms >= 1772323200250");
    expect(text).toContain("time <= toDateTime(1772409600, 'UTC') AND time_ms < 1772409600750");
  });
});

describe('buildUsageQuery group-by keys', () => {
  it('reads no inherited property as a group-by path', () => {
    const text = buildUsageQuery('db', meter, {
      timeZone: 'UTC',
      groupBy: ['constructor'],
      filterGroupBy: { toString: ['x'] },
    }).text;
    expect(text).not.toContain('$.model');
    expect(text).toContain("indexOf(data_paths, '') > 0");
  });
});

import { describe, expect, it } from 'vitest';
import type { LogEvent } from './event.ts';
import { byMonthGroups, MAX_MONTHS_PER_INSERT } from './store.ts';

const at = (time: string, id: string): LogEvent => ({
  namespace: 'acme',
  id,
  source: 's',
  type: 't',
  subject: 'c',
  time: Date.parse(time),
  datacontenttype: null,
  dataschema: null,
  data: null,
  ingestedAt: 0,
});

describe('byMonthGroups', () => {
  it('keeps a batch within 100 months as one INSERT', () => {
    const events = [
      at('2026-01-31T23:59:59.999Z', 'a'),
      at('2026-02-01T00:00:00Z', 'b'),
      at('2018-01-01T00:00:00Z', 'c'),
    ];
    expect(byMonthGroups(events)).toEqual([events]);
  });

  it('splits a backfill spanning 150 months into INSERTs of at most 100 months, losing none', () => {
    const events = Array.from({ length: 300 }, (_, i) => {
      const month = i % 150;
      return at(new Date(Date.UTC(2010, month, 1 + (i % 28))).toISOString(), `e${i}`);
    });
    const groups = byMonthGroups(events);
    expect(groups).toHaveLength(2);
    for (const group of groups) {
      const months = new Set(group.map((e) => new Date(e.time).toISOString().slice(0, 7)));
      expect(months.size).toBeLessThanOrEqual(MAX_MONTHS_PER_INSERT);
    }
    expect(
      groups
        .flat()
        .map((e) => e.id)
        .sort(),
    ).toEqual(events.map((e) => e.id).sort());
  });
});

import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from './cloud-event.ts';

describe('parseRfc3339', () => {
  it('keeps milliseconds and applies offsets', () => {
    expect(parseRfc3339('2026-01-01T00:00:00.123Z')).toBe(Date.UTC(2026, 0, 1, 0, 0, 0, 123));
    expect(parseRfc3339('2026-01-01T02:00:00+02:00')).toBe(Date.UTC(2026, 0, 1));
    expect(parseRfc3339('2026-01-01t00:00:00z')).toBe(Date.UTC(2026, 0, 1));
  });

  it('truncates sub-millisecond digits instead of rounding into the next millisecond', () => {
    expect(parseRfc3339('2026-01-01T00:00:00.999999Z')).toBe(Date.UTC(2026, 0, 1, 0, 0, 0, 999));
  });

  it('refuses what is not an RFC 3339 date-time', () => {
    for (const text of [
      '2026-01-01',
      '2026-01-01T00:00:00',
      '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-01-01T24:00:00Z',
      'Thu, 01 Jan 2026 00:00:00 GMT',
      '1767225600',
    ]) {
      expect(parseRfc3339(text), text).toBeNull();
    }
  });
});

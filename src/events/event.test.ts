import { describe, expect, it } from 'vitest';
import { childPath, DataKind, flattenData } from './event.ts';

describe('flattenData', () => {
  it('lists every leaf with its JSONPath, text, kind and number', () => {
    const flat = flattenData({
      model: 'gpt-4o',
      usage: { input_tokens: 1250, cost: 0.1 },
      items: [{ n: 1 }, 'x'],
      ok: true,
      none: null,
    });
    expect(flat.paths).toEqual([
      '$.model',
      '$.usage.input_tokens',
      '$.usage.cost',
      '$.items[0].n',
      '$.items[1]',
      '$.ok',
      '$.none',
    ]);
    expect(flat.values).toEqual(['gpt-4o', '1250', '0.1', '1', 'x', 'true', '']);
    expect(flat.kinds).toEqual([
      DataKind.string,
      DataKind.number,
      DataKind.number,
      DataKind.number,
      DataKind.string,
      DataKind.boolean,
      DataKind.null,
    ]);
    expect(flat.decimals).toEqual(['0', '1250', '0.1', '1', '0', '0', '0']);
  });

  it('quotes keys that are not plain identifiers', () => {
    expect(childPath('$', 'a.b')).toBe("$['a.b']");
    expect(childPath('$', "it's")).toBe("$['it\\'s']");
    expect(flattenData({ 'odd key': { '0': 5 } }).paths).toEqual(["$['odd key']['0']"]);
  });

  it('gives empty arrays for no data', () => {
    expect(flattenData(null)).toEqual({ paths: [], values: [], kinds: [], decimals: [] });
  });

  it('reads numeric strings as numbers, exactly from their text', () => {
    const flat = flattenData({
      a: '1250',
      b: ' -0.5 ',
      c: '12345678901234567.123456789',
      d: 'gpt-4',
      e: '1e3',
    });
    expect(flat.kinds).toEqual([
      DataKind.numericString,
      DataKind.numericString,
      DataKind.numericString,
      DataKind.string,
      DataKind.numericString,
    ]);
    expect(flat.decimals).toEqual(['1250', '-0.5', '12345678901234567.123456789', '0', '1000']);
    expect(flat.values[2]).toBe('12345678901234567.123456789');
  });

  it('keeps numbers beyond Decimal128 as text, marked out of range', () => {
    const flat = flattenData({ huge: 1e300 });
    expect(flat.kinds).toEqual([DataKind.numberOutOfRange]);
    expect(flat.values).toEqual(['1e+300']);
    expect(flat.decimals).toEqual(['0']);
  });
});

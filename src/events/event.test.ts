import { describe, expect, it } from 'vitest';
import { childPath, DataKind, decodeLogEvent, encodeLogEvent, flattenData, type LogEvent } from './event.ts';
import { parseJson } from './json.ts';

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

  it('keeps the literal of every number, and reads its decimal exactly from it', () => {
    const data = parseJson(
      '{"a":12345678901234567,"b":12345678901234568,"c":1.50,"d":999999999999999999,"e":1.0000000015}',
    ) as Record<string, unknown>;
    const flat = flattenData(data);
    expect(flat.values).toEqual([
      '12345678901234567',
      '12345678901234568',
      '1.50',
      '999999999999999999',
      '1.0000000015',
    ]);
    expect(flat.kinds).toEqual(Array(5).fill(DataKind.number));
    expect(flat.decimals).toEqual([
      '12345678901234567',
      '12345678901234568',
      '1.5',
      '999999999999999999',
      '1.000000002',
    ]);
  });
});

describe('log event encoding', () => {
  it('round-trips numbers in data as the client wrote them', () => {
    const data = parseJson('{"id":12345678901234567891,"n":[1.50,-0,1e3,7],"s":"1.50"}') as Record<
      string,
      unknown
    >;
    const event: LogEvent = {
      namespace: 'acme',
      id: 'e1',
      source: 's',
      type: 't',
      subject: 'c',
      time: 1_700_000_000_000,
      datacontenttype: null,
      dataschema: null,
      data,
      ingestedAt: 1_700_000_000_001,
    };
    const encoded = encodeLogEvent(event);
    expect(encoded).toContain('"data":{"id":12345678901234567891,"n":[1.50,-0,1e3,7],"s":"1.50"}');
    const decoded = decodeLogEvent(encoded);
    expect(encodeLogEvent(decoded)).toBe(encoded);
    expect(flattenData(decoded.data).values).toEqual([
      '12345678901234567891',
      '1.50',
      '-0',
      '1e3',
      '7',
      '1.50',
    ]);
  });
});

import fc from 'fast-check';
import { parse as losslessParse } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { isLosslessNumber, LosslessNumber, numberText, parseJson, stringifyJson } from './json.ts';

const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((d) => d.join(''));

/** Any JSON number literal: canonical ones (1250, 0.5) and not (1.50, 1e3, -0, 12345678901234567891). */
const numberLiteral = fc
  .tuple(
    fc.constantFrom('', '-'),
    fc.oneof(
      fc.constant('0'),
      fc.tuple(fc.constantFrom(...'123456789'), digits(0, 22)).map(([a, b]) => a + b),
    ),
    fc.option(
      digits(1, 12).map((d) => `.${d}`),
      { nil: '' },
    ),
    fc.option(
      fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3)).map((p) => p.join('')),
      { nil: '' },
    ),
  )
  .map((parts) => parts.join(''));

/** Keys whose order JavaScript keeps (integer-like keys are moved first by every object). */
const objectKey = fc.string().filter((key) => !/^(0|[1-9]\d*)$/.test(key));

/** Compact JSON text (as JSON.stringify writes it) with arbitrary number literals. */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    numberLiteral,
    fc.string({ unit: 'grapheme' }).map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null', '"\\\\"', '"a\\"1.50"', '"\\u0000x"', '"\\\\u0000"'),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc
      .uniqueArray(fc.tuple(objectKey, tie('value')), { maxLength: 4, selector: ([key]) => key })
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
})).value;

/** The definition parseJson must meet, by lossless-json alone (its slowest path). */
const reference = (text: string) =>
  losslessParse(text, null, {
    parseNumber: (literal) =>
      String(Number(literal)) === literal ? Number(literal) : new LosslessNumber(literal),
    onDuplicateKey: ({ newValue }) => newValue,
  });

describe('parseJson', () => {
  it('gives what lossless-json gives, on each of its paths, whitespace or not', () => {
    fc.assert(
      fc.property(jsonText, fc.constantFrom('', ' ', '\n\t'), (text, space) => {
        // Whitespace inside strings may make the text invalid: then both must refuse it.
        const spaced = text.replaceAll(',', `,${space}`).replaceAll(':', `${space}:${space}`);
        let expected: { value: unknown } | null = null;
        try {
          expected = { value: reference(spaced) };
        } catch {}
        if (expected) expect(parseJson(spaced)).toEqual(expected.value);
        else expect(() => parseJson(spaced)).toThrow();
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses exactly what JSON.parse refuses: texts one edit away from JSON', () => {
    const edit = fc.tuple(
      jsonText,
      fc.nat(),
      fc.constantFrom('', '"', ':', ',', '1', '.', 'e', '-', '{', '}', '[', ']', '\\', ' ', '0', '+'),
      fc.boolean(),
    );
    fc.assert(
      fc.property(edit, ([text, at, insert, replace]) => {
        const p = at % (text.length + 1);
        const edited = text.slice(0, p) + insert + text.slice(replace ? p + 1 : p);
        let valid = true;
        try {
          JSON.parse(edited);
        } catch {
          valid = false;
        }
        if (valid) expect(parseJson(edited)).toEqual(reference(edited));
        else expect(() => parseJson(edited)).toThrow(SyntaxError);
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps every number literal: stringifyJson gives back the text it parsed', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        expect(stringifyJson(parseJson(text))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads canonical literals as plain numbers, and any other literal as a LosslessNumber', () => {
    const value = parseJson('[1250,0.5,-2,1.50,1e3,-0,12345678901234567,12345678901234568]') as unknown[];
    expect(value.slice(0, 3)).toEqual([1250, 0.5, -2]);
    expect(value.slice(3).map((v) => isLosslessNumber(v) && v.value)).toEqual([
      '1.50',
      '1e3',
      '-0',
      '12345678901234567',
      false, // ...568 is a double exactly as written
    ]);
    expect(value[7]).toBe(12345678901234568);
  });

  it('reads a bare literal and a placeholder-like string', () => {
    expect(parseJson('1.50')).toEqual(new LosslessNumber('1.50'));
    expect(parseJson('[1.50,"\\u00001"]')).toEqual([new LosslessNumber('1.50'), '\u00001']);
  });

  it('behaves as JSON.parse on repeated keys and "__proto__", on both paths', () => {
    for (const n of ['1', '1.50']) {
      const value = parseJson(`{"a":1,"__proto__":{"x":${n}},"a":2}`) as Record<string, unknown>;
      expect(Object.keys(value)).toEqual(['a', '__proto__']);
      expect(value.a).toBe(2);
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      const own = Object.getOwnPropertyDescriptor(value, '__proto__')?.value as { x: unknown };
      expect(numberText(own.x)).toBe(n);
    }
  });

  it('refuses invalid JSON as JSON.parse does', () => {
    const invalid = [
      '{"a":',
      '[01]',
      '[1.]',
      '[NaN]',
      '{"a":1}x',
      "{'a':1}",
      '{1.50:1}',
      '[1.2.3]',
      '["a]',
      '-',
    ];
    for (const text of [...invalid, '[1.50,"a]', '[1.50 2]', '{"a":1.50,}', '[-]', '{"k":1e3']) {
      expect(() => parseJson(text), text).toThrow(SyntaxError);
    }
  });

  it('is not fooled by number-like text in strings or escaped quotes', () => {
    const value = parseJson('{"k\\"":"1.50\\\\","n":1}');
    expect(value).toEqual({ 'k"': '1.50\\', n: 1 });
  });
});

describe('stringifyJson', () => {
  it('writes a LosslessNumber as its literal, anywhere in the value', () => {
    expect(stringifyJson({ a: [new LosslessNumber('12345678901234567891')], b: 1 })).toBe(
      '{"a":[12345678901234567891],"b":1}',
    );
    expect(stringifyJson({ a: 1.5, s: 'x' })).toBe('{"a":1.5,"s":"x"}');
  });
});

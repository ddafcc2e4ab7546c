import { describe, expect, it } from 'vitest';
import { identifier, join, literal, quoteString, sql } from './sql.ts';

describe('SQL literals', () => {
  it('escapes quotes, backslashes, NUL and line breaks so a string stays one literal', () => {
    expect(quoteString("O'Brien")).toBe("'O\\'Brien'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
    expect(quoteString('x\0y\nz\t')).toBe("'x\\0y\\nz\\t'");
    expect(quoteString("\\'; DROP TABLE events; --")).toBe("'\\\\\\'; DROP TABLE events; --'");
  });

  it('renders numbers, booleans, dates and lists, refusing non-finite numbers', () => {
    expect(literal(42)).toBe('42');
    expect(literal(10n ** 20n)).toBe('100000000000000000000');
    expect(literal(true)).toBe('1');
    expect(literal(new Date('2024-01-01T00:00:01.999Z'))).toBe("toDateTime(1704067201, 'UTC')");
    expect(literal(['a', 1])).toBe("('a', 1)");
    expect(literal([])).toBe('(NULL)');
    expect(() => literal(Number.NaN)).toThrow(/finite/);
    expect(() => literal(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });

  it('builds queries from templates and fragments', () => {
    const where = join([sql`namespace = ${'n'}`, sql`subject IN ${['a', "b'"]}`], ' AND ');
    expect(sql`SELECT 1 FROM t WHERE ${where} LIMIT ${10}`.text).toBe(
      "SELECT 1 FROM t WHERE namespace = 'n' AND subject IN ('a', 'b\\'') LIMIT 10",
    );
  });

  it('accepts only plain identifiers', () => {
    expect(identifier('meterline_test_1').text).toBe('meterline_test_1');
    expect(() => identifier('x; DROP')).toThrow();
    expect(() => identifier('`x`')).toThrow();
  });
});

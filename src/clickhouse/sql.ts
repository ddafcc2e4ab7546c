/**
 * The one place that turns values into ClickHouse SQL literals. ClickHouse 18.16 (CI) has no query
 * parameters, so every value that reaches SQL goes through `sql` below; identifiers never come from input.
 */

/** A fragment that is already SQL (written by us, or built by `sql`): inserted as is. */
export class Sql {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** A single-quoted string literal; backslash, quote and control characters escaped. */
export function quoteString(value: string): string {
  return `'${value.replace(/[\\'\0\n\r\t]/g, (ch) => ESCAPES[ch] ?? ch)}'`;
}

export type SqlValue = string | number | bigint | boolean | Date | Sql | readonly SqlValue[];

export function literal(value: SqlValue): string {
  if (value instanceof Sql) return value.text;
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
    return String(value);
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new TypeError('invalid date');
    return `toDateTime(${Math.floor(ms / 1000)}, 'UTC')`;
  }
  if (Array.isArray(value)) return `(${value.length === 0 ? 'NULL' : value.map(literal).join(', ')})`;
  throw new TypeError(`unsupported SQL value: ${typeof value}`);
}

/** Tagged template: `sql\`... WHERE namespace = ${ns}\`` escapes each value by its type. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): Sql {
  let text = strings[0] ?? '';
  values.forEach((value, i) => {
    text += literal(value) + (strings[i + 1] ?? '');
  });
  return new Sql(text);
}

/** Joins fragments, e.g. optional WHERE conditions. */
export function join(parts: readonly Sql[], separator: string): Sql {
  return new Sql(parts.map((p) => p.text).join(separator));
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Identifiers come from configuration or code, never from requests; this refuses anything odd. */
export function identifier(name: string): Sql {
  if (!IDENTIFIER.test(name)) throw new TypeError(`not a safe identifier: ${name}`);
  return new Sql(name);
}

/** DateTime is 32-bit unsigned seconds: a bound outside it would wrap around, so it is clamped. */
export function dateTimeSeconds(ms: number): number {
  return Math.min(Math.max(Math.floor(ms / 1000), 0), 4_294_967_295);
}

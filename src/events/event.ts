import { z } from 'zod';
import { decimalFromText } from './decimal.ts';
import { isLosslessNumber, numberText, parseJson, stringifyJson } from './json.ts';

/**
 * An accepted event as it travels through the event log: validated, namespaced, its time fixed
 * (a missing `time` becomes the ingest time once, so a redelivery carries the same value).
 */
export const LogEvent = z.object({
  namespace: z.string().min(1),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  subject: z.string().min(1),
  /** Milliseconds since the epoch. */
  time: z.number().int().nonnegative(),
  datacontenttype: z.string().nullable(),
  dataschema: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
  ingestedAt: z.number().int().nonnegative(),
});
export type LogEvent = z.infer<typeof LogEvent>;

/** The identity of an event (invariant 1): accepting the same key twice stores one event. */
export function eventKey(event: Pick<LogEvent, 'namespace' | 'source' | 'id'>): string {
  return JSON.stringify([event.namespace, event.source, event.id]);
}

/** JSON text of an event; numbers in `data` keep their source text (src/events/json.ts). */
export function encodeLogEvent(event: LogEvent): string {
  return stringifyJson(event);
}

export function decodeLogEvent(raw: string): LogEvent {
  return LogEvent.parse(parseJson(raw));
}

/**
 * What a flattened leaf holds. numberOutOfRange (kept as text only) comes only from events logged
 * before ingest refused JSON numbers outside the countable range.
 */
export const DataKind = {
  null: 0,
  boolean: 1,
  number: 2,
  string: 3,
  numberOutOfRange: 4,
  numericString: 5,
} as const;

/** Kinds a meter can read a number from (SUM, AVG, MIN, MAX, LATEST). */
export const NUMERIC_KINDS = [DataKind.number, DataKind.numericString] as const;

/** Parallel arrays, one entry per leaf; `decimals` is plain decimal text ('0' for non-numbers). */
export type FlatData = { paths: string[]; values: string[]; kinds: number[]; decimals: string[] };

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The canonical JSONPath of a child: `$.a.b`, `$['odd key']`, `$.items[0]`. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (PLAIN_KEY.test(key)) return `${parent}.${key}`;
  return `${parent}['${key.replace(/[\\']/g, (ch) => `\\${ch}`)}']`;
}

/**
 * The UTF-8 bytes childPath adds to its parent's path, without building the path: ingest sums
 * these over all leaves to bound what flattenData would produce (every leaf repeats its ancestors).
 */
export function childPathBytes(key: string | number): number {
  if (typeof key === 'number') return String(key).length + 2;
  if (PLAIN_KEY.test(key)) return key.length + 1;
  let escapes = 0;
  for (let i = 0; i < key.length; i += 1) {
    const c = key.charCodeAt(i);
    if (c === 92 || c === 39) escapes += 1;
  }
  return Buffer.byteLength(key) + escapes + 4;
}

/**
 * Flattens `data` once, at sink time, into parallel arrays of leaf paths and values so that
 * queries read a value by path with `indexOf` instead of parsing JSON per row (ClickHouse 18.16
 * has no JSON functions for nested values).
 */
export function flattenData(data: Record<string, unknown> | null): FlatData {
  const flat: FlatData = { paths: [], values: [], kinds: [], decimals: [] };
  const visit = (value: unknown, path: string) => {
    if (value === null || value === undefined) {
      push(path, '', DataKind.null, '0');
    } else if (typeof value === 'number' || isLosslessNumber(value)) {
      // The client's literal, for group-by and unique counts; its exact decimal, for meter values.
      const text = numberText(value) ?? '';
      const decimal = decimalFromText(text);
      if (decimal === null) push(path, text, DataKind.numberOutOfRange, '0');
      else push(path, text, DataKind.number, decimal);
    } else if (typeof value === 'boolean') {
      push(path, String(value), DataKind.boolean, '0');
    } else if (typeof value === 'string') {
      const decimal = value.length <= 64 ? decimalFromText(value.trim()) : null;
      if (decimal === null) push(path, value, DataKind.string, '0');
      else push(path, value, DataKind.numericString, decimal);
    } else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) visit(item, childPath(path, i));
    } else if (typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) visit(item, childPath(path, key));
    }
  };
  const push = (path: string, text: string, kind: number, decimal: string) => {
    flat.paths.push(path);
    flat.values.push(text);
    flat.kinds.push(kind);
    flat.decimals.push(decimal);
  };
  if (data) for (const [key, item] of Object.entries(data)) visit(item, childPath('$', key));
  return flat;
}

import { COUNTABLE_RANGE, decimalFromText } from '../events/decimal.ts';
import { childPath, childPathBytes } from '../events/event.ts';
import { isLosslessNumber, numberText } from '../events/json.ts';
import type { FieldProblem } from '../lib/errors.ts';

/** What the sink can store of one event's `data` (INGEST_MAX_DATA_* in src/config.ts). */
export type DataLimits = {
  /** Containers on the deepest path, `data` itself being 1. */
  maxDepth: number;
  /** Scalars (flattenData writes one entry for each). */
  maxLeaves: number;
  /** UTF-8 bytes of all leaves' flattened paths together. */
  maxPathBytes: number;
};

/** One object or array being walked; `parent` and `key` rebuild its path only when it is reported. */
type Frame = {
  value: Record<string, unknown> | unknown[];
  keys: string[] | null;
  next: number;
  depth: number;
  pathBytes: number;
  parent: Frame | null;
  key: string | number;
};

/** The JSONPath of `frame`'s child `key`, or of `frame` itself. */
function pathOf(frame: Frame, key?: string | number): string {
  const keys: (string | number)[] = key === undefined ? [] : [key];
  for (let f: Frame | null = frame; f?.parent; f = f.parent) keys.push(f.key);
  return keys.reverse().reduce<string>((path, k) => childPath(path, k), '$');
}

const clip = (text: string) => (text.length > 40 ? `${text.slice(0, 40)}…` : text);

/**
 * Why `data` cannot be stored, or null. Walks once, without recursion (JSON.parse accepts nesting
 * that would overflow the stack) and without building paths (their total is what a hostile event
 * inflates), so the check costs time linear in the body, whatever the body holds. Refuses: a
 * "__proto__" key (JavaScript objects would drop it), a string with an unpaired surrogate (UTF-8
 * cannot hold it), a JSON number outside the countable range (src/events/decimal.ts; named by its
 * path), and data over any of the limits (with the actual figure; for depth, the first level past it).
 */
export function dataProblem(
  data: Record<string, unknown>,
  limits: DataLimits,
): Omit<FieldProblem, 'index'> | null {
  let leaves = 0;
  let pathBytes = 0;
  const stack: Frame[] = [];
  const open = (value: object, parent: Frame | null, key: string | number, bytes: number) => {
    const frame: Frame = {
      value: value as Frame['value'],
      keys: Array.isArray(value) ? null : Object.keys(value),
      next: 0,
      depth: (parent?.depth ?? 0) + 1,
      pathBytes: bytes,
      parent,
      key,
    };
    stack.push(frame);
  };
  open(data, null, '$', 1);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    const count = frame.keys ? frame.keys.length : (frame.value as unknown[]).length;
    if (frame.next >= count) {
      stack.pop();
      continue;
    }
    const i = frame.next;
    frame.next += 1;
    let key: string | number = i;
    let child: unknown;
    if (frame.keys) {
      key = frame.keys[i] as string;
      if (key === '__proto__')
        return { field: 'data', message: 'data holds a "__proto__" key, which cannot be stored' };
      if (!key.isWellFormed())
        return {
          field: 'data',
          message: `data holds a key with an unpaired UTF-16 surrogate, in ${pathOf(frame)}`,
        };
      child = (frame.value as Record<string, unknown>)[key];
    } else {
      child = (frame.value as unknown[])[i];
    }
    const bytes = frame.pathBytes + childPathBytes(key);
    if (child !== null && typeof child === 'object' && !isLosslessNumber(child)) {
      // Refused whatever else it holds; stopping here keeps the walk's memory to the limit.
      if (frame.depth >= limits.maxDepth) {
        return {
          field: 'data',
          message: `data is nested more than ${limits.maxDepth} levels deep; the limit is ${limits.maxDepth}`,
        };
      }
      open(child, frame, key, bytes);
      continue;
    }
    leaves += 1;
    pathBytes += bytes;
    if (typeof child === 'string') {
      if (!child.isWellFormed())
        return { field: 'data', message: `data holds an unpaired UTF-16 surrogate at ${pathOf(frame, key)}` };
      continue;
    }
    const literal = numberText(child);
    if (literal !== null && decimalFromText(literal) === null) {
      return {
        field: `data.${pathOf(frame, key)}`,
        message:
          `the number ${clip(literal)} is outside the range Meterline counts exactly (${COUNTABLE_RANGE}, ` +
          'at 9 decimal places); send an identifier or other value that is not a quantity as a JSON string',
      };
    }
  }
  if (leaves > limits.maxLeaves)
    return { field: 'data', message: `data holds ${leaves} values; the limit is ${limits.maxLeaves}` };
  if (pathBytes > limits.maxPathBytes) {
    return {
      field: 'data',
      message:
        `data's flattened value paths take ${pathBytes} bytes (each value repeats every key above it); ` +
        `the limit is ${limits.maxPathBytes}`,
    };
  }
  return null;
}

import {
  isLosslessNumber,
  LosslessNumber,
  parse as losslessParse,
  stringify as losslessStringify,
} from 'lossless-json';

/**
 * JSON that keeps every number as the client wrote it (issue 8): `12345678901234567891` must not
 * become `12345678901234567000`, nor `1.50` become `1.5`. A number whose literal is exactly what
 * JavaScript would print for it (`1250`, `0.5`) stays a plain `number`, since its text is then
 * `String(value)`; any other literal (`1.50`, `1e3`, `-0`, more digits than a double holds) is a
 * LosslessNumber carrying the literal. parseJson gets that result with one JSON.parse (see there):
 * lossless-json's own parser costs ~4x JSON.parse on a batch, and ~50x on a 1 MB prompt.
 */
export { isLosslessNumber, LosslessNumber };

/** True when `String(Number(literal)) === literal`, checked cheaply for short integers. */
function isCanonical(text: string, start: number, end: number): boolean {
  let i = start;
  if (text.charCodeAt(i) === 45) i += 1; // '-'
  // Integers of at most 15 digits without a leading zero print as written (and "-0" does not).
  const first = text.charCodeAt(i);
  if (end - i <= 15 && first >= 49 && first <= 57) {
    let digits = true;
    for (let k = i + 1; k < end && digits; k += 1) {
      const c = text.charCodeAt(k);
      digits = c >= 48 && c <= 57;
    }
    if (digits) return true;
  }
  const literal = text.slice(start, end);
  return String(Number(literal)) === literal;
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * The [start, end) offsets of each non-canonical number literal outside strings, or null when the
 * text cannot be JSON (an unterminated string, a malformed number). Strings are skipped with
 * indexOf, so a large prompt costs little. Structure is left to JSON.parse.
 */
function nonCanonicalNumbers(text: string): number[] | null {
  const found: number[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // '"': the string ends at the next quote preceded by an even number of backslashes.
      let quote = i;
      for (;;) {
        quote = text.indexOf('"', quote + 1);
        if (quote === -1) return null;
        let slash = quote - 1;
        while (text.charCodeAt(slash) === 92) slash -= 1;
        if ((quote - 1 - slash) % 2 === 0) break;
      }
      i = quote + 1;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = i;
      i += 1;
      while (i < n) {
        const d = text.charCodeAt(i);
        // digits . e E + -
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i += 1;
        else break;
      }
      // A canonical literal is valid JSON; any other must be checked, as it will not reach JSON.parse.
      if (!isCanonical(text, start, i)) {
        if (!JSON_NUMBER.test(text.slice(start, i))) return null;
        found.push(start, i);
      }
    } else i += 1;
  }
  return found;
}

function parseNumber(literal: string): number | LosslessNumber {
  return isCanonical(literal, 0, literal.length) ? Number(literal) : new LosslessNumber(literal);
}

function losslessOnly(text: string): unknown {
  return losslessParse(text, null, { parseNumber, onDuplicateKey: ({ newValue }) => newValue });
}

const isPlaceholder = (item: unknown): item is string => typeof item === 'string' && item.charCodeAt(0) === 0;

const fromPlaceholder = (placeholder: string, literals: string[]) =>
  new LosslessNumber(literals[Number(placeholder.slice(1))] as string);

/**
 * Turns, in place, each placeholder string "\u0000<k>" into LosslessNumber(literals[k]). False if a
 * key is a placeholder: a number stood where JSON wants a key, so the text was not JSON. Plain
 * assignment (defineProperty costs ~10x here) except for an own "__proto__" key, which assignment
 * would turn into a prototype.
 */
function restoreNumbers(value: object, literals: string[]): boolean {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      if (typeof item === 'object') {
        if (item !== null && !restoreNumbers(item, literals)) return false;
      } else if (isPlaceholder(item)) value[i] = fromPlaceholder(item, literals);
    }
    return true;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    if (isPlaceholder(key)) return false;
    const item = object[key];
    if (typeof item === 'object') {
      if (item !== null && !restoreNumbers(item, literals)) return false;
    } else if (isPlaceholder(item)) {
      const number = fromPlaceholder(item, literals);
      if (key !== '__proto__') object[key] = number;
      else
        Object.defineProperty(object, key, {
          value: number,
          writable: true,
          enumerable: true,
          configurable: true,
        });
    }
  }
  return true;
}

/**
 * Parses JSON keeping each number's source text (see above). As JSON.parse: a repeated key keeps
 * its last value, and "__proto__" is an ordinary own key. Throws SyntaxError on invalid JSON (and
 * RangeError when a text with non-canonical numbers nests deeper than the stack).
 *
 * One scan finds the literals that are not canonical. None (most traffic): JSON.parse's value is
 * exact. Otherwise each is swapped for the placeholder string "\u0000<k>" (no string of a text
 * without a "\u0000" escape can start with NUL), JSON.parse reads that, and the placeholders become
 * LosslessNumbers. A text that holds "\u0000" goes through lossless-json. Whatever the scan cannot
 * vouch for goes to JSON.parse as written, to be refused in its words.
 */
export function parseJson(text: string): unknown {
  const spans = nonCanonicalNumbers(text);
  if (spans === null) {
    JSON.parse(text); // throws; if not, the scan was wrong, and the slow parser is still right
    return losslessOnly(text);
  }
  if (spans.length === 0) return JSON.parse(text);
  if (text.includes('\\u0000')) return losslessOnly(text);
  const literals: string[] = [];
  let swapped = '';
  let from = 0;
  for (let k = 0; k < spans.length; k += 2) {
    const start = spans[k] as number;
    const end = spans[k + 1] as number;
    swapped += `${text.slice(from, start)}"\\u0000${literals.length}"`;
    literals.push(text.slice(start, end));
    from = end;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(swapped + text.slice(from));
  } catch {
    JSON.parse(text); // the same structure: throws, with positions in the client's text
    return losslessOnly(text);
  }
  if (isPlaceholder(parsed)) return fromPlaceholder(parsed, literals);
  if (typeof parsed === 'object' && parsed !== null && !restoreNumbers(parsed, literals)) {
    JSON.parse(text); // a number where a key belongs: throws
    return losslessOnly(text);
  }
  return parsed;
}

function holdsLosslessNumber(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (isLosslessNumber(value)) return true;
  if (Array.isArray(value)) return value.some(holdsLosslessNumber);
  for (const key in value) if (holdsLosslessNumber((value as Record<string, unknown>)[key])) return true;
  return false;
}

/** JSON text of a value that may hold LosslessNumbers, each written as its literal. */
export function stringifyJson(value: unknown): string {
  return (holdsLosslessNumber(value) ? losslessStringify(value) : JSON.stringify(value)) ?? 'null';
}

/** The source text of a JSON number (a number or a LosslessNumber), else null. */
export function numberText(value: unknown): string | null {
  if (typeof value === 'number') return String(value);
  if (isLosslessNumber(value)) return value.value;
  return null;
}

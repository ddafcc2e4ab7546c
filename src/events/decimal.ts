/**
 * The numeric policy, in one place. A JSON number is read from the client's own literal (ingest
 * parses losslessly, src/events/json.ts), rounded half-to-even to SCALE decimal places, and stored
 * as ClickHouse Decimal128(SCALE), where sums are exact. Its magnitude must stay under
 * 10^MAX_INTEGER_DIGITS after rounding; ingest refuses a JSON number outside that range (a 400
 * naming the field) rather than leave it out of a meter. A result is turned into a JSON number
 * once, at the end.
 */
export const SCALE = 9;

/**
 * Decimal128(38, 9) would hold 29 integer digits, but a sum must fit too: one value stays under
 * 10^18, so some 10^11 maximal values sum without overflow (ClickHouse wraps silently).
 */
export const MAX_INTEGER_DIGITS = 18;

/** The countable range in words, for messages: "|x| < 10^18". */
export const COUNTABLE_RANGE = `|x| < 10^${MAX_INTEGER_DIGITS}`;

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i;

/**
 * Plain decimal text (no exponent, at most SCALE fraction digits) for a double computed in
 * JavaScript, or null when its magnitude is 10^18 or more. A client's number goes through
 * decimalFromText on its literal instead.
 */
export function toDecimalText(value: number): string | null {
  return Number.isFinite(value) ? decimalFromText(String(value)) : null;
}

/**
 * The same for a number written as text: a JSON number's literal, or a numeric string ("1250",
 * "-0.5", "1e3"), which OpenMeter counts as a number too. Exact from the text itself, so long digit
 * strings keep every digit up to the scale; null outside COUNTABLE_RANGE or if not a number.
 */
export function decimalFromText(text: string): string | null {
  const match = NUMBER.exec(text);
  if (!match) return null;
  const [, sign = '', intPart = '', fracPart = '', exponent = '0'] = match;
  // All significant digits as one integer, and where the decimal point sits in it.
  let digits = intPart + fracPart;
  let point = intPart.length + Number(exponent);
  // Decide by magnitude before writing digits out: "1e999999999" must not become a billion zeros.
  const lead = digits.search(/[1-9]/);
  if (lead === -1) return '0';
  if (point - lead > MAX_INTEGER_DIGITS) return null;
  if (point < -SCALE) return '0'; // under 10^-10: rounds to 0 at SCALE places
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += '0'.repeat(point - digits.length);
  let integer = BigInt(digits.slice(0, point) || '0');
  let fraction = digits.slice(point);
  if (fraction.length > SCALE) {
    const kept = BigInt(integer.toString() + fraction.slice(0, SCALE).padEnd(SCALE, '0'));
    const rest = fraction.slice(SCALE);
    const half = rest[0] === '5' && /^5?0*$/.test(rest);
    const up =
      rest[0] !== undefined && (rest[0] > '5' || (rest[0] === '5' && !half) || (half && kept % 2n === 1n));
    const rounded = kept + (up ? 1n : 0n);
    const text = rounded.toString().padStart(SCALE + 1, '0');
    integer = BigInt(text.slice(0, -SCALE));
    fraction = text.slice(-SCALE);
  }
  fraction = fraction.replace(/0+$/, '');
  const intText = integer.toString();
  if (intText.length > MAX_INTEGER_DIGITS) return null;
  const body = fraction ? `${intText}.${fraction}` : intText;
  return sign && body !== '0' ? `-${body}` : body;
}

/**
 * The numeric policy, in one place. A JSON number reaches us as an IEEE double (JSON.parse); we take
 * the shortest decimal that round-trips it (the client's own literal whenever it had at most 15
 * significant digits), round it half-to-even to SCALE decimal places, and store it as ClickHouse
 * Decimal128(SCALE), where sums are exact. A result is turned into a JSON number once, at the end.
 */
export const SCALE = 9;

/**
 * Decimal128(38, 9) would hold 29 integer digits, but a sum must fit too: one value stays under
 * 10^18, so some 10^11 maximal values sum without overflow (ClickHouse wraps silently).
 */
const MAX_INTEGER_DIGITS = 18;

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i;

/**
 * Plain decimal text (no exponent, at most SCALE fraction digits) for a finite number, or null when
 * its magnitude is 10^18 or more.
 */
export function toDecimalText(value: number): string | null {
  return Number.isFinite(value) ? decimalFromText(String(value)) : null;
}

/**
 * The same for a number written as text ("1250", "-0.5", "1e3"): OpenMeter counts numeric strings
 * as numbers. Exact from the text itself, so long digit strings keep every digit up to the scale.
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

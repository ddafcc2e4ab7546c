import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decimalFromText, toDecimalText } from './decimal.ts';

describe('toDecimalText', () => {
  it('keeps the literal a client wrote', () => {
    expect(toDecimalText(0.1)).toBe('0.1');
    expect(toDecimalText(1250)).toBe('1250');
    expect(toDecimalText(-2.25)).toBe('-2.25');
    expect(toDecimalText(1e-7)).toBe('0.0000001');
    expect(toDecimalText(1e17)).toBe('100000000000000000');
    expect(toDecimalText(123456.789)).toBe('123456.789');
    expect(toDecimalText(-0)).toBe('0');
  });

  it('rounds half to even at the ninth decimal place', () => {
    expect(toDecimalText(1.0000000005)).toBe('1');
    expect(toDecimalText(1.0000000015)).toBe('1.000000002');
    expect(toDecimalText(1.00000000051)).toBe('1.000000001');
    expect(toDecimalText(1e-10)).toBe('0');
    expect(toDecimalText(0.9999999999)).toBe('1');
    expect(toDecimalText(-0.0000000004)).toBe('0');
  });

  it('refuses magnitudes of 10^18 and more, so that sums cannot overflow Decimal128', () => {
    expect(toDecimalText(999_999_999_999_999_900)).toBe('999999999999999900');
    expect(toDecimalText(1e18)).toBeNull();
    expect(toDecimalText(Number.MAX_VALUE)).toBeNull();
    expect(toDecimalText(Number.NaN)).toBeNull();
  });

  it('judges numeric text with a huge exponent by its magnitude, without writing the digits out', () => {
    expect(decimalFromText('1e999999999')).toBeNull();
    expect(decimalFromText('-1e99999999999999999999')).toBeNull();
    expect(decimalFromText('1e-999999999')).toBe('0');
    expect(decimalFromText('0e999999999')).toBe('0');
    expect(decimalFromText('0.000001e6')).toBe('1');
    expect(decimalFromText('1e17')).toBe('100000000000000000');
    expect(decimalFromText('1e18')).toBeNull();
    expect(decimalFromText('6e-10')).toBe('0.000000001');
    expect(decimalFromText('5e-10')).toBe('0');
  });

  it('agrees with the number to within half a unit of the ninth place', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e15, max: 1e15, noNaN: true }), (value) => {
        const text = toDecimalText(value);
        expect(text).not.toBeNull();
        expect(Math.abs(Number(text) - value)).toBeLessThanOrEqual(5e-10 + Math.abs(value) * Number.EPSILON);
      }),
    );
  });
});

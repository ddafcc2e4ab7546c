import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecretBox, parseEncryptionKey } from './secrets.ts';

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32));

  it('round-trips, and never stores the plain text', () => {
    const sealed = box.seal('rk_test_51Secret', 'acme');
    expect(sealed).not.toContain('rk_test');
    expect(sealed).not.toBe(box.seal('rk_test_51Secret', 'acme')); // a fresh IV each time
    expect(box.open(sealed, 'acme')).toBe('rk_test_51Secret');
  });

  it('refuses tampered values and another key', () => {
    const sealed = box.seal('whsec_abc', 'acme');
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3] ?? '', 'base64url');
    data[0] = (data[0] ?? 0) ^ 1;
    parts[3] = data.toString('base64url');
    expect(() => box.open(parts.join('.'), 'acme')).toThrow();
    expect(() => createSecretBox(randomBytes(32)).open(sealed, 'acme')).toThrow();
  });

  it('does not open a value moved to another namespace', () => {
    const sealed = box.seal('rk_test_51Secret', 'acme');
    expect(() => box.open(sealed, 'globex')).toThrow();
  });

  it('refuses a truncated authentication tag (short tags are easier to forge)', () => {
    const parts = box.seal('rk_test_51Secret', 'acme').split('.');
    parts[2] = Buffer.from(parts[2] ?? '', 'base64url')
      .subarray(0, 4)
      .toString('base64url');
    expect(() => box.open(parts.join('.'), 'acme')).toThrow();
  });

  it('reads 32-byte keys as hex or base64 only', () => {
    expect(parseEncryptionKey('ab'.repeat(32))?.length).toBe(32);
    expect(parseEncryptionKey(randomBytes(32).toString('base64'))?.length).toBe(32);
    expect(parseEncryptionKey('too-short')).toBeNull();
  });
});

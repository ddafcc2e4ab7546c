import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for Stripe secrets at rest. Stored as `v2.<iv>.<tag>.<ciphertext>` (base64url), so
 * a tampered value fails to decrypt instead of decrypting to garbage, and the format can evolve.
 * The namespace is authenticated with the value: a secret copied to another namespace's row does
 * not open there.
 */
export type SecretBox = {
  seal(plain: string, namespace: string): string;
  open(sealed: string, namespace: string): string;
};

// Pinned on both sides: GCM would otherwise accept a truncated tag, which is far easier to forge.
const TAG_BYTES = 16;

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
  return {
    seal(plain, namespace) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(namespace, 'utf8'));
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v2', iv, cipher.getAuthTag(), data]
        .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
        .join('.');
    },
    open(sealed, namespace) {
      const [version, iv, tag, data] = sealed.split('.');
      if (version !== 'v2' || !iv || !tag || data === undefined) {
        throw new Error('not a v2 sealed secret: connect the Stripe account again');
      }
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(namespace, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString(
          'utf8',
        );
      } catch {
        throw new Error(
          `a stored secret does not open for namespace ${namespace} with this STRIPE_ENCRYPTION_KEY`,
        );
      }
    },
  };
}

/** STRIPE_ENCRYPTION_KEY: 32 bytes as 64 hex characters or base64. */
export function parseEncryptionKey(text: string): Buffer | null {
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  return key.length === 32 ? key : null;
}

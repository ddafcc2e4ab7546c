import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/client.ts';
import { createKeyStore } from './store.ts';

export type KeyService = ReturnType<typeof createKeyService>;

export const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Entries per cache (known keys, unknown keys). */
const CACHE_SIZE = 10_000;

const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest();

/** API keys: shown once at creation, stored only as a hash, each bound to one namespace. */
export function createKeyService(db: Db, options: { cacheTtlMs?: number } = {}) {
  const store = createKeyStore(db);
  const ttl = options.cacheTtlMs ?? 10_000;
  // Ingest authenticates every request; a short cache spares PostgreSQL a round trip each time.
  // Unknown keys are remembered apart, so a flood of them cannot push the real ones out.
  type Entry = { namespace: string | null; until: number };
  const known = new Map<string, Entry>();
  const unknown = new Map<string, Entry>();

  return {
    async create(namespace: string, description = '') {
      if (!NAMESPACE_PATTERN.test(namespace)) {
        throw new Error('namespace: lowercase letters, digits, - and _, at most 63 characters');
      }
      const key = `ml_${randomBytes(32).toString('base64url')}`;
      const row = await store.insert({
        namespace,
        hash: hashKey(key),
        prefix: key.slice(0, 10),
        description,
      });
      return { key, id: row.id, namespace: row.namespace, prefix: row.key_prefix };
    },

    /** The key's namespace, or null when the key is unknown or revoked. */
    async authenticate(key: string): Promise<string | null> {
      const hash = hashKey(key);
      const cacheKey = hash.toString('base64');
      const now = Date.now();
      const hit = known.get(cacheKey) ?? unknown.get(cacheKey);
      if (hit && hit.until > now) return hit.namespace;
      const namespace = (await store.findActiveByHash(hash))?.namespace ?? null;
      const cache = namespace ? known : unknown;
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(cacheKey, { namespace, until: now + ttl });
      return namespace;
    },
  };
}

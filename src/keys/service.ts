import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/client.ts';
import { createKeyStore } from './store.ts';

export type KeyService = ReturnType<typeof createKeyService>;

export const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Key ids are the table's bigserial. */
export const KEY_ID_PATTERN = /^[1-9][0-9]{0,17}$/;

/** Entries per cache (known keys, unknown keys). */
const CACHE_SIZE = 10_000;

/**
 * How long a key found valid is trusted without asking PostgreSQL again: the bound on how long a
 * revoked key keeps working on an api process that had it cached. A 1 s TTL was chosen over
 * Redis pub/sub invalidation: it costs one indexed lookup per key per second per process, holds
 * without Redis (a missed message during a reconnect would need a TTL as safety net anyway), and
 * leaves the key service depending on PostgreSQL alone.
 */
const KNOWN_TTL_MS = 1_000;
/** Unknown keys: only a key created after its first failed use waits this long to start working. */
const UNKNOWN_TTL_MS = 10_000;

const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export type KeyServiceOptions = {
  /** Overrides both TTLs (tests use 0). */
  cacheTtlMs?: number;
  now?: () => number;
};

/** API keys: shown once at creation, stored only as a hash, each bound to one namespace. */
export function createKeyService(db: Db, options: KeyServiceOptions = {}) {
  const store = createKeyStore(db);
  const knownTtl = options.cacheTtlMs ?? KNOWN_TTL_MS;
  const unknownTtl = options.cacheTtlMs ?? UNKNOWN_TTL_MS;
  const now = options.now ?? Date.now;
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

    /** The namespace's keys, revoked ones included, oldest first. */
    async list(namespace: string) {
      const rows = await store.listByNamespace(namespace);
      return rows.map((r) => ({
        id: r.id,
        prefix: r.key_prefix,
        description: r.description,
        createdAt: r.created_at,
        revokedAt: r.revoked_at,
      }));
    },

    /**
     * Revokes a key by id: refused at once by this process, by other api processes once their
     * cached entry expires (KNOWN_TTL_MS). Undefined when no key has this id.
     */
    async revoke(id: string) {
      if (!KEY_ID_PATTERN.test(id)) return undefined;
      const row = await store.revoke(id);
      if (!row) return undefined;
      known.delete(row.key_hash.toString('base64'));
      return {
        id: row.id,
        namespace: row.namespace,
        prefix: row.key_prefix,
        revokedAt: row.revoked_at as Date,
        alreadyRevoked: row.already_revoked,
      };
    },

    /** The key's namespace, or null when the key is unknown or revoked. */
    async authenticate(key: string): Promise<string | null> {
      const hash = hashKey(key);
      const cacheKey = hash.toString('base64');
      const at = now();
      const hit = known.get(cacheKey) ?? unknown.get(cacheKey);
      if (hit && hit.until > at) return hit.namespace;
      const namespace = (await store.findActiveByHash(hash))?.namespace ?? null;
      const [cache, other] = namespace ? [known, unknown] : [unknown, known];
      other.delete(cacheKey);
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(cacheKey, { namespace, until: at + (namespace ? knownTtl : unknownTtl) });
      return namespace;
    },
  };
}

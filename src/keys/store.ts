import type { Db } from '../db/client.ts';

export type ApiKeyRow = { id: string; namespace: string; key_prefix: string; created_at: Date };

/** What `keys list` shows of a key: never the key or its hash. */
export type ApiKeyListRow = ApiKeyRow & { description: string; revoked_at: Date | null };

export type RevokedKeyRow = ApiKeyListRow & { key_hash: Buffer; already_revoked: boolean };

export function createKeyStore(db: Db) {
  return {
    async insert(input: { namespace: string; hash: Buffer; prefix: string; description: string }) {
      const { rows } = await db.query<ApiKeyRow>(
        `INSERT INTO api_keys (namespace, key_hash, key_prefix, description) VALUES ($1, $2, $3, $4)
         RETURNING id, namespace, key_prefix, created_at`,
        [input.namespace, input.hash, input.prefix, input.description],
      );
      return rows[0] as ApiKeyRow;
    },
    async findActiveByHash(hash: Buffer): Promise<{ namespace: string } | undefined> {
      const { rows } = await db.query<{ namespace: string }>(
        'SELECT namespace FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
        [hash],
      );
      return rows[0];
    },
    async listByNamespace(namespace: string): Promise<ApiKeyListRow[]> {
      const { rows } = await db.query<ApiKeyListRow>(
        `SELECT id, namespace, key_prefix, description, created_at, revoked_at FROM api_keys
         WHERE namespace = $1 ORDER BY id`,
        [namespace],
      );
      return rows;
    },
    /** Sets revoked_at once (a second revoke keeps the first time). Undefined when no such key. */
    async revoke(id: string): Promise<RevokedKeyRow | undefined> {
      // The FROM row is read before the update: it tells a first revoke from a repeated one.
      const { rows } = await db.query<RevokedKeyRow>(
        `UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, now())
         FROM (SELECT id, revoked_at AS was FROM api_keys WHERE id = $1) b WHERE k.id = b.id
         RETURNING k.id, k.namespace, k.key_prefix, k.description, k.created_at, k.revoked_at,
                   k.key_hash, b.was IS NOT NULL AS already_revoked`,
        [id],
      );
      return rows[0];
    },
  };
}

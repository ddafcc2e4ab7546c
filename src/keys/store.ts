import type { Db } from '../db/client.ts';

export type ApiKeyRow = { id: string; namespace: string; key_prefix: string; created_at: Date };

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
  };
}

import { ulid } from 'ulid';
import { type Db, inTransaction } from '../db/client.ts';
import { isUlid } from '../lib/ids.ts';

export type Subject = {
  id: string;
  key: string;
  displayName: string | null;
  metadata: Record<string, unknown> | null;
  stripeCustomerId: string | null;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

export type SubjectUpsert = {
  key: string;
  displayName?: string | null;
  metadata?: Record<string, unknown> | null;
  stripeCustomerId?: string | null;
  currentPeriodStart?: string | null;
  currentPeriodEnd?: string | null;
};

type SubjectRow = {
  id: string;
  key: string;
  display_name: string | null;
  metadata: Record<string, unknown> | null;
  stripe_customer_id: string | null;
  current_period_start: Date | null;
  current_period_end: Date | null;
  created_at: Date;
  updated_at: Date;
};

const fromDbSubject = (row: SubjectRow): Subject => ({
  id: row.id,
  key: row.key,
  displayName: row.display_name,
  metadata: row.metadata,
  stripeCustomerId: row.stripe_customer_id,
  currentPeriodStart: row.current_period_start,
  currentPeriodEnd: row.current_period_end,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export type SubjectStore = ReturnType<typeof createSubjectStore>;

export function createSubjectStore(db: Db) {
  return {
    async list(namespace: string): Promise<Subject[]> {
      const { rows } = await db.query<SubjectRow>(
        'SELECT * FROM subjects WHERE namespace = $1 ORDER BY key',
        [namespace],
      );
      return rows.map(fromDbSubject);
    },

    async get(namespace: string, idOrKey: string): Promise<Subject | undefined> {
      // A key may look like a ULID too: the id wins, then the key.
      const { rows } = await db.query<SubjectRow>(
        `SELECT * FROM subjects WHERE namespace = $1 AND (key = $2 OR ($3 AND id = $2))
         ORDER BY (id = $2) DESC LIMIT 1`,
        [namespace, idOrKey, isUlid(idOrKey)],
      );
      return rows[0] ? fromDbSubject(rows[0]) : undefined;
    },

    /** Creates or updates by key, in one transaction: fields left out keep their value. */
    async upsert(namespace: string, inputs: readonly SubjectUpsert[]): Promise<Subject[]> {
      return inTransaction(db, async (client) => {
        const out: Subject[] = [];
        for (const input of inputs) {
          const has = (field: keyof SubjectUpsert) => input[field] !== undefined;
          const { rows } = await client.query<SubjectRow>(
            `INSERT INTO subjects (id, namespace, key, display_name, metadata, stripe_customer_id,
                                   current_period_start, current_period_end)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (namespace, key) DO UPDATE SET
               display_name = CASE WHEN $9 THEN EXCLUDED.display_name ELSE subjects.display_name END,
               metadata = CASE WHEN $10 THEN EXCLUDED.metadata ELSE subjects.metadata END,
               stripe_customer_id = CASE WHEN $11 THEN EXCLUDED.stripe_customer_id ELSE subjects.stripe_customer_id END,
               current_period_start = CASE WHEN $12 THEN EXCLUDED.current_period_start ELSE subjects.current_period_start END,
               current_period_end = CASE WHEN $13 THEN EXCLUDED.current_period_end ELSE subjects.current_period_end END,
               updated_at = now()
             RETURNING *`,
            [
              ulid(),
              namespace,
              input.key,
              input.displayName ?? null,
              input.metadata === undefined || input.metadata === null ? null : JSON.stringify(input.metadata),
              input.stripeCustomerId ?? null,
              input.currentPeriodStart ?? null,
              input.currentPeriodEnd ?? null,
              has('displayName'),
              has('metadata'),
              has('stripeCustomerId'),
              has('currentPeriodStart'),
              has('currentPeriodEnd'),
            ],
          );
          out.push(fromDbSubject(rows[0] as SubjectRow));
        }
        return out;
      });
    },

    async remove(namespace: string, id: string): Promise<void> {
      await db.query('DELETE FROM subjects WHERE namespace = $1 AND id = $2', [namespace, id]);
    },
  };
}

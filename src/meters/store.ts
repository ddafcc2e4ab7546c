import { ulid } from 'ulid';
import type { Db } from '../db/client.ts';
import { isUlid } from '../lib/ids.ts';
import type { Aggregation, Meter, MeterCreate, MeterUpdate } from './meter.ts';

type MeterRow = {
  id: string;
  namespace: string;
  slug: string;
  name: string;
  description: string | null;
  metadata: Record<string, string> | null;
  aggregation: Aggregation;
  event_type: string;
  event_from: Date | null;
  value_property: string | null;
  group_by: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
};

function fromDbMeter(row: MeterRow): Meter {
  return {
    id: row.id,
    namespace: row.namespace,
    slug: row.slug,
    name: row.name,
    description: row.description,
    metadata: row.metadata,
    aggregation: row.aggregation,
    eventType: row.event_type,
    eventFrom: row.event_from,
    valueProperty: row.value_property,
    groupBy: row.group_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

export type MeterStore = ReturnType<typeof createMeterStore>;

export function createMeterStore(db: Db) {
  return {
    async list(namespace: string, options: { includeDeleted?: boolean } = {}): Promise<Meter[]> {
      const { rows } = await db.query<MeterRow>(
        `SELECT * FROM meters WHERE namespace = $1 AND ($2 OR deleted_at IS NULL) ORDER BY slug, created_at`,
        [namespace, options.includeDeleted ?? false],
      );
      return rows.map(fromDbMeter);
    },

    /** A live meter by id or slug. */
    async get(namespace: string, idOrSlug: string): Promise<Meter | undefined> {
      // A slug may look like a ULID too: the id wins, then the slug.
      const { rows } = await db.query<MeterRow>(
        `SELECT * FROM meters
         WHERE namespace = $1 AND (slug = $2 OR ($3 AND id = $2)) AND deleted_at IS NULL
         ORDER BY (id = $2) DESC LIMIT 1`,
        [namespace, idOrSlug, isUlid(idOrSlug)],
      );
      return rows[0] ? fromDbMeter(rows[0]) : undefined;
    },

    /** Inserts; undefined when a live meter already has the slug. */
    async insert(namespace: string, input: MeterCreate): Promise<Meter | undefined> {
      const { rows } = await db.query<MeterRow>(
        `INSERT INTO meters (id, namespace, slug, name, description, metadata, aggregation, event_type,
                             event_from, value_property, group_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (namespace, slug) WHERE deleted_at IS NULL DO NOTHING
         RETURNING *`,
        [
          ulid(),
          namespace,
          input.slug,
          input.name ?? input.slug,
          input.description ?? null,
          input.metadata ?? null,
          input.aggregation,
          input.eventType,
          input.eventFrom ?? null,
          input.valueProperty ?? null,
          JSON.stringify(input.groupBy ?? {}),
        ],
      );
      return rows[0] ? fromDbMeter(rows[0]) : undefined;
    },

    async update(id: string, input: MeterUpdate): Promise<Meter | undefined> {
      const { rows } = await db.query<MeterRow>(
        `UPDATE meters SET
           name = COALESCE($2, name),
           description = CASE WHEN $3::boolean THEN $4 ELSE description END,
           metadata = CASE WHEN $5::boolean THEN $6::jsonb ELSE metadata END,
           group_by = COALESCE($7::jsonb, group_by),
           updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL
         RETURNING *`,
        [
          id,
          input.name ?? null,
          input.description !== undefined,
          input.description ?? null,
          input.metadata !== undefined,
          input.metadata === undefined ? null : JSON.stringify(input.metadata),
          input.groupBy ? JSON.stringify(input.groupBy) : null,
        ],
      );
      return rows[0] ? fromDbMeter(rows[0]) : undefined;
    },

    async softDelete(id: string): Promise<boolean> {
      const { rowCount } = await db.query(
        'UPDATE meters SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL',
        [id],
      );
      return (rowCount ?? 0) > 0;
    },
  };
}

import type pg from 'pg';
import { type Db, inTransaction as runInTransaction } from '../db/client.ts';

export type ConnectionRow = {
  namespace: string;
  account_id: string;
  livemode: boolean;
  api_key_encrypted: string;
  api_key_last4: string;
  webhook_endpoint_id: string | null;
  webhook_secret_encrypted: string | null;
  webhook_managed: boolean;
  last_sync_at: Date | null;
  problems: string[];
  created_at: Date;
  updated_at: Date;
};

/** Mirror rows: the fields Meterline bills from, flattened out of Stripe's objects. */
export type MirrorCustomer = {
  id: string;
  email: string | null;
  name: string | null;
  metadata: Record<string, string>;
  deleted: boolean;
};
export type MirrorMeter = {
  id: string;
  eventName: string;
  displayName: string | null;
  formula: string;
  eventTimeWindow: string | null;
  customerPayloadKey: string;
  valuePayloadKey: string;
  status: string;
};
export type MirrorPrice = {
  id: string;
  productId: string | null;
  meterId: string | null;
  usageType: string | null;
  unitAmountDecimal: string | null;
  currency: string;
  active: boolean;
};
export type MirrorItem = { id: string; priceId: string; currentPeriodStart: Date; currentPeriodEnd: Date };
export type MirrorSubscription = {
  id: string;
  customerId: string;
  status: string;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  items: MirrorItem[];
};

export type Mirror = {
  customers: MirrorCustomer[];
  meters: MirrorMeter[];
  prices: MirrorPrice[];
  subscriptions: MirrorSubscription[];
};

type Queryable = Pick<pg.PoolClient, 'query'>;

/** Where a mirror write comes from: one webhook event, or a full re-read of the account. */
export type WriteFrom = 'event' | 'reread';

export type StripeStore = ReturnType<typeof createStripeStore>;

export function createStripeStore(db: Db) {
  const inTransaction = <T>(work: (client: pg.PoolClient) => Promise<T>) => runInTransaction(db, work);

  /**
   * Which stored state a write may replace. An event replaces state from its own second or older (a
   * same-second tie was re-fetched under the object's lock); a full re-read replaces only state
   * older than the second its read started, since an event from that second may describe a change
   * the read did not see.
   */
  const guard = (table: string, from: WriteFrom) =>
    `WHERE ${table}.source_at ${from === 'reread' ? '<' : '<='} EXCLUDED.source_at`;

  async function putCustomer(q: Queryable, ns: string, c: MirrorCustomer, at: Date, from: WriteFrom) {
    await q.query(
      `INSERT INTO stripe_customers (namespace, id, email, name, metadata, deleted, source_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (namespace, id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
         metadata = EXCLUDED.metadata, deleted = EXCLUDED.deleted, source_at = EXCLUDED.source_at
       ${guard('stripe_customers', from)}`,
      [ns, c.id, c.email, c.name, JSON.stringify(c.metadata), c.deleted, at],
    );
  }

  async function putMeter(q: Queryable, ns: string, m: MirrorMeter, at: Date, from: WriteFrom) {
    await q.query(
      `INSERT INTO stripe_meters (namespace, id, event_name, display_name, formula, event_time_window,
                                  customer_payload_key, value_payload_key, status, source_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (namespace, id) DO UPDATE SET event_name = EXCLUDED.event_name,
         display_name = EXCLUDED.display_name, formula = EXCLUDED.formula,
         event_time_window = EXCLUDED.event_time_window, customer_payload_key = EXCLUDED.customer_payload_key,
         value_payload_key = EXCLUDED.value_payload_key, status = EXCLUDED.status,
         source_at = EXCLUDED.source_at
       ${guard('stripe_meters', from)}`,
      [
        ns,
        m.id,
        m.eventName,
        m.displayName,
        m.formula,
        m.eventTimeWindow,
        m.customerPayloadKey,
        m.valuePayloadKey,
        m.status,
        at,
      ],
    );
  }

  async function putPrice(q: Queryable, ns: string, p: MirrorPrice, at: Date, from: WriteFrom) {
    await q.query(
      `INSERT INTO stripe_prices (namespace, id, product_id, meter_id, usage_type, unit_amount_decimal, currency, active, source_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (namespace, id) DO UPDATE SET product_id = EXCLUDED.product_id, meter_id = EXCLUDED.meter_id,
         usage_type = EXCLUDED.usage_type, unit_amount_decimal = EXCLUDED.unit_amount_decimal,
         currency = EXCLUDED.currency, active = EXCLUDED.active, source_at = EXCLUDED.source_at
       ${guard('stripe_prices', from)}`,
      [ns, p.id, p.productId, p.meterId, p.usageType, p.unitAmountDecimal, p.currency, p.active, at],
    );
  }

  /** A subscription and its items replace the stored ones together, or not at all (older state). */
  async function putSubscription(q: Queryable, ns: string, s: MirrorSubscription, at: Date, from: WriteFrom) {
    const { rowCount } = await q.query(
      `INSERT INTO stripe_subscriptions (namespace, id, customer_id, status, cancel_at_period_end, canceled_at, source_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (namespace, id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
         cancel_at_period_end = EXCLUDED.cancel_at_period_end, canceled_at = EXCLUDED.canceled_at,
         source_at = EXCLUDED.source_at
       ${guard('stripe_subscriptions', from)}`,
      [ns, s.id, s.customerId, s.status, s.cancelAtPeriodEnd, s.canceledAt, at],
    );
    if (!rowCount) return false;
    await q.query('DELETE FROM stripe_subscription_items WHERE namespace = $1 AND subscription_id = $2', [
      ns,
      s.id,
    ]);
    for (const item of s.items) {
      await q.query(
        `INSERT INTO stripe_subscription_items (namespace, id, subscription_id, price_id, current_period_start, current_period_end)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (namespace, id) DO UPDATE SET subscription_id = EXCLUDED.subscription_id,
           price_id = EXCLUDED.price_id, current_period_start = EXCLUDED.current_period_start,
           current_period_end = EXCLUDED.current_period_end`,
        [ns, item.id, s.id, item.priceId, item.currentPeriodStart, item.currentPeriodEnd],
      );
    }
    return true;
  }

  return {
    inTransaction,
    putCustomer,
    putMeter,
    putPrice,
    putSubscription,

    async getConnection(namespace: string): Promise<ConnectionRow | undefined> {
      const { rows } = await db.query<ConnectionRow>(
        'SELECT * FROM stripe_connections WHERE namespace = $1',
        [namespace],
      );
      return rows[0];
    },

    async listConnections(): Promise<ConnectionRow[]> {
      return (await db.query<ConnectionRow>('SELECT * FROM stripe_connections ORDER BY namespace')).rows;
    },

    async saveConnection(
      row: Omit<ConnectionRow, 'created_at' | 'updated_at' | 'last_sync_at' | 'problems'>,
    ) {
      await db.query(
        `INSERT INTO stripe_connections (namespace, account_id, livemode, api_key_encrypted, api_key_last4,
                                         webhook_endpoint_id, webhook_secret_encrypted, webhook_managed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (namespace) DO UPDATE SET account_id = EXCLUDED.account_id, livemode = EXCLUDED.livemode,
           api_key_encrypted = EXCLUDED.api_key_encrypted, api_key_last4 = EXCLUDED.api_key_last4,
           webhook_endpoint_id = EXCLUDED.webhook_endpoint_id,
           webhook_secret_encrypted = EXCLUDED.webhook_secret_encrypted,
           webhook_managed = EXCLUDED.webhook_managed, updated_at = now()`,
        [
          row.namespace,
          row.account_id,
          row.livemode,
          row.api_key_encrypted,
          row.api_key_last4,
          row.webhook_endpoint_id,
          row.webhook_secret_encrypted,
          row.webhook_managed,
        ],
      );
    },

    async recordSync(namespace: string, problems: string[]) {
      await db.query(
        'UPDATE stripe_connections SET last_sync_at = now(), problems = $2, updated_at = now() WHERE namespace = $1',
        [namespace, JSON.stringify(problems)],
      );
    },

    /** A failed reconcile: its problems replace the last ones, and last_sync_at stays when it last worked. */
    async recordSyncFailure(namespace: string, problems: string[]) {
      await db.query('UPDATE stripe_connections SET problems = $2, updated_at = now() WHERE namespace = $1', [
        namespace,
        JSON.stringify(problems),
      ]);
    },

    /** Removes the connection and everything mirrored for the namespace. */
    async deleteConnection(namespace: string) {
      await inTransaction(async (q) => {
        for (const table of [
          'stripe_connections',
          'stripe_customers',
          'stripe_meters',
          'stripe_prices',
          'stripe_subscriptions',
          'stripe_subscription_items',
          'stripe_meter_links',
        ]) {
          await q.query(`DELETE FROM ${table} WHERE namespace = $1`, [namespace]);
        }
      });
    },

    /** Whether an event id was processed before (a redelivery). */
    async eventSeen(q: Queryable, namespace: string, eventId: string): Promise<boolean> {
      const { rowCount } = await q.query(
        'SELECT 1 FROM stripe_events WHERE namespace = $1 AND event_id = $2',
        [namespace, eventId],
      );
      return (rowCount ?? 0) > 0;
    },

    /** Claims an event id; false when it was processed before (a redelivery). */
    async claimEvent(q: Queryable, namespace: string, event: { id: string; type: string; created: number }) {
      const { rowCount } = await q.query(
        `INSERT INTO stripe_events (namespace, event_id, type, created) VALUES ($1, $2, $3, to_timestamp($4))
         ON CONFLICT DO NOTHING`,
        [namespace, event.id, event.type, event.created],
      );
      return (rowCount ?? 0) > 0;
    },

    async sourceAt(
      q: Queryable,
      table: 'stripe_customers' | 'stripe_subscriptions' | 'stripe_meters',
      namespace: string,
      id: string,
    ) {
      const { rows } = await q.query<{ source_at: Date }>(
        `SELECT source_at FROM ${table} WHERE namespace = $1 AND id = $2`,
        [namespace, id],
      );
      return rows[0]?.source_at;
    },

    /**
     * Serialises writers of one mirrored object until the transaction ends, so that two deliveries
     * about an object not yet stored cannot both see "no row" and the older one commit last; and
     * waits while a full re-read of the namespace is being written (lockMirror).
     */
    async lockObject(q: Queryable, namespace: string, id: string) {
      await q.query(
        `SELECT pg_advisory_xact_lock_shared(hashtext('stripe mirror ' || $1)),
                pg_advisory_xact_lock(hashtext($1), hashtext($2))`,
        [namespace, id],
      );
    },

    /**
     * The whole namespace's mirror, for a full re-read's write: deliveries wait (lockObject), then
     * compare with what it wrote. One lock, not one per object: thousands would exhaust
     * PostgreSQL's lock table (max_locks_per_transaction).
     */
    async lockMirror(q: Queryable, namespace: string) {
      await q.query(`SELECT pg_advisory_xact_lock(hashtext('stripe mirror ' || $1))`, [namespace]);
    },

    /**
     * Removes what a full re-read did not find, except rows written since the read started (a
     * webhook's, newer than the read). Customers are kept as tombstones, so that a late, older event
     * cannot bring a deleted one back; items go with their subscription.
     */
    async pruneMirror(q: Queryable, namespace: string, seen: Mirror, readStart: Date) {
      await q.query(
        `UPDATE stripe_customers SET deleted = true, email = NULL, name = NULL, metadata = '{}', source_at = $3
         WHERE namespace = $1 AND NOT deleted AND NOT (id = ANY($2::text[])) AND source_at < $3`,
        [namespace, seen.customers.map((c) => c.id), readStart],
      );
      const prune = (table: string, ids: string[]) =>
        q.query(
          `DELETE FROM ${table} WHERE namespace = $1 AND NOT (id = ANY($2::text[])) AND source_at < $3`,
          [namespace, ids, readStart],
        );
      await prune(
        'stripe_meters',
        seen.meters.map((m) => m.id),
      );
      await prune(
        'stripe_prices',
        seen.prices.map((p) => p.id),
      );
      await prune(
        'stripe_subscriptions',
        seen.subscriptions.map((s) => s.id),
      );
      await q.query(
        `DELETE FROM stripe_subscription_items i WHERE namespace = $1 AND NOT EXISTS (
           SELECT 1 FROM stripe_subscriptions s WHERE s.namespace = i.namespace AND s.id = i.subscription_id)`,
        [namespace],
      );
    },

    /** The whole mirror of a namespace, in a stable order (reconcile tests compare it with Stripe). */
    async readMirror(namespace: string): Promise<Mirror> {
      const customers = await db.query(
        `SELECT id, email, name, metadata, deleted FROM stripe_customers WHERE namespace = $1 ORDER BY id COLLATE "C"`,
        [namespace],
      );
      const meters = await db.query(
        `SELECT id, event_name AS "eventName", display_name AS "displayName", formula,
                event_time_window AS "eventTimeWindow", customer_payload_key AS "customerPayloadKey",
                value_payload_key AS "valuePayloadKey", status
         FROM stripe_meters WHERE namespace = $1 ORDER BY id COLLATE "C"`,
        [namespace],
      );
      const prices = await db.query(
        `SELECT id, product_id AS "productId", meter_id AS "meterId", usage_type AS "usageType",
                unit_amount_decimal AS "unitAmountDecimal", currency, active
         FROM stripe_prices WHERE namespace = $1 ORDER BY id COLLATE "C"`,
        [namespace],
      );
      const subscriptions = await db.query(
        `SELECT id, customer_id AS "customerId", status, cancel_at_period_end AS "cancelAtPeriodEnd",
                canceled_at AS "canceledAt" FROM stripe_subscriptions WHERE namespace = $1 ORDER BY id COLLATE "C"`,
        [namespace],
      );
      const items = await db.query(
        `SELECT id, subscription_id, price_id AS "priceId", current_period_start AS "currentPeriodStart",
                current_period_end AS "currentPeriodEnd"
         FROM stripe_subscription_items WHERE namespace = $1 ORDER BY id COLLATE "C"`,
        [namespace],
      );
      return {
        customers: customers.rows,
        meters: meters.rows,
        prices: prices.rows,
        subscriptions: subscriptions.rows.map((s) => ({
          ...s,
          items: items.rows
            .filter((i) => i.subscription_id === s.id)
            .map(({ subscription_id: _, ...item }) => item),
        })),
      };
    },

    async meterLinks(namespace: string): Promise<Map<string, string>> {
      const { rows } = await db.query<{ meter_slug: string; stripe_meter_id: string }>(
        'SELECT meter_slug, stripe_meter_id FROM stripe_meter_links WHERE namespace = $1',
        [namespace],
      );
      return new Map(rows.map((r) => [r.meter_slug, r.stripe_meter_id]));
    },

    async linkMeter(namespace: string, meterSlug: string, stripeMeterId: string) {
      await db.query(
        `INSERT INTO stripe_meter_links (namespace, meter_slug, stripe_meter_id) VALUES ($1, $2, $3)
         ON CONFLICT (namespace, meter_slug) DO UPDATE SET stripe_meter_id = EXCLUDED.stripe_meter_id`,
        [namespace, meterSlug, stripeMeterId],
      );
    },
  };
}

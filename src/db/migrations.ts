import pg from 'pg';
import type { Db } from './client.ts';

/** PostgreSQL schema, numbered; each step runs once, inside a transaction, under an advisory lock. */
const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'api keys',
    sql: `
      CREATE TABLE api_keys (
        id bigserial PRIMARY KEY,
        namespace text NOT NULL,
        -- sha256 of the whole key: keys are 256-bit random, so a fast hash is enough and a leak of
        -- this table reveals no usable key.
        key_hash bytea NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        description text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      );
      CREATE INDEX api_keys_namespace ON api_keys (namespace);`,
  },
  {
    version: 2,
    name: 'meters and subjects',
    sql: `
      CREATE TABLE meters (
        id text PRIMARY KEY,
        namespace text NOT NULL,
        slug text NOT NULL,
        name text NOT NULL,
        description text,
        metadata jsonb,
        aggregation text NOT NULL,
        event_type text NOT NULL,
        event_from timestamptz,
        value_property text,
        group_by jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      );
      -- A deleted meter keeps its row (and id); its slug may be reused.
      CREATE UNIQUE INDEX meters_live_slug ON meters (namespace, slug) WHERE deleted_at IS NULL;

      CREATE TABLE subjects (
        id text PRIMARY KEY,
        namespace text NOT NULL,
        key text NOT NULL,
        display_name text,
        metadata jsonb,
        stripe_customer_id text,
        current_period_start timestamptz,
        current_period_end timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX subjects_key ON subjects (namespace, key);
      CREATE INDEX subjects_stripe_customer ON subjects (namespace, stripe_customer_id);`,
  },
  {
    version: 3,
    name: 'stripe connection, webhook ledger and mirror',
    sql: `
      CREATE TABLE stripe_connections (
        namespace text PRIMARY KEY,
        account_id text NOT NULL,
        livemode boolean NOT NULL,
        -- AES-256-GCM, key from STRIPE_ENCRYPTION_KEY; never stored or logged in plain text.
        api_key_encrypted text NOT NULL,
        api_key_last4 text NOT NULL,
        webhook_endpoint_id text,
        webhook_secret_encrypted text,
        webhook_managed boolean NOT NULL,
        last_sync_at timestamptz,
        problems jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      -- Each Stripe event is applied once.
      CREATE TABLE stripe_events (
        namespace text NOT NULL,
        event_id text NOT NULL,
        type text NOT NULL,
        created timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (namespace, event_id)
      );

      -- The mirror. source_at is the Stripe time of the state stored (event.created, or the
      -- fetch time): older states never overwrite newer ones.
      CREATE TABLE stripe_customers (
        namespace text NOT NULL,
        id text NOT NULL,
        email text,
        name text,
        metadata jsonb NOT NULL DEFAULT '{}',
        deleted boolean NOT NULL DEFAULT false,
        source_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, id)
      );
      CREATE TABLE stripe_meters (
        namespace text NOT NULL,
        id text NOT NULL,
        event_name text NOT NULL,
        display_name text,
        formula text NOT NULL,
        event_time_window text,
        customer_payload_key text NOT NULL,
        value_payload_key text NOT NULL,
        status text NOT NULL,
        source_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, id)
      );
      CREATE TABLE stripe_prices (
        namespace text NOT NULL,
        id text NOT NULL,
        product_id text,
        meter_id text,
        usage_type text,
        unit_amount_decimal text,
        currency text NOT NULL,
        active boolean NOT NULL,
        source_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, id)
      );
      CREATE TABLE stripe_subscriptions (
        namespace text NOT NULL,
        id text NOT NULL,
        customer_id text NOT NULL,
        status text NOT NULL,
        cancel_at_period_end boolean NOT NULL,
        canceled_at timestamptz,
        source_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, id)
      );
      CREATE TABLE stripe_subscription_items (
        namespace text NOT NULL,
        id text NOT NULL,
        subscription_id text NOT NULL,
        price_id text NOT NULL,
        current_period_start timestamptz NOT NULL,
        current_period_end timestamptz NOT NULL,
        PRIMARY KEY (namespace, id)
      );
      CREATE INDEX stripe_subscription_items_subscription ON stripe_subscription_items (namespace, subscription_id);

      -- Explicit links from a Meterline meter to a Stripe meter; without one, event_name = slug links.
      CREATE TABLE stripe_meter_links (
        namespace text NOT NULL,
        meter_slug text NOT NULL,
        stripe_meter_id text NOT NULL,
        PRIMARY KEY (namespace, meter_slug)
      );`,
  },
];

const LOCK_ID = 4_207_713; // any constant: serialises concurrent `meterline migrate` runs

export async function migratePostgres(db: Db): Promise<number[]> {
  const client = await db.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const ran: number[] = [];
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      ran.push(migration.version);
    }
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => undefined);
    client.release();
  }
}

/** Creates the database named in the URL when missing (Postgres cannot CREATE DATABASE IF NOT EXISTS). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`unsupported database name: ${name}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const db = new pg.Pool({ connectionString: admin.toString(), max: 1 });
  try {
    const { rowCount } = await db.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount)
      await db.query(`CREATE DATABASE ${name}`).catch((err) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
  } finally {
    await db.end();
  }
}

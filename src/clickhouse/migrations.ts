import type { ClickHouse } from './client.ts';
import { identifier, type Sql, sql } from './sql.ts';

/**
 * ClickHouse schema, numbered. Each step runs once (recorded in schema_migrations) and is written
 * to be harmless if re-run. The SQL must run on ClickHouse 18.16 and on current releases.
 */
const MIGRATIONS: { version: number; name: string; statements: (db: Sql) => Sql[] }[] = [
  {
    version: 1,
    name: 'events, event keys, dead letters',
    statements: (db) => [
      // The sort key holds the identity (source, id) behind the query prefix, so FINAL collapses a
      // redelivered copy of an event (same key, same time) at read time, exactly.
      sql`CREATE TABLE IF NOT EXISTS ${db}.events (
        namespace String,
        id String,
        source String,
        type String,
        subject String,
        time DateTime('UTC'),
        time_ms Int64,
        ingested_at_ms Int64,
        stored_at_ms Int64,
        datacontenttype String,
        dataschema String,
        data String,
        data_paths Array(String),
        data_values Array(String),
        data_kinds Array(UInt8),
        data_decimals Array(Decimal128(9))
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(time)
      ORDER BY (namespace, type, subject, time, source, id)`,
      // Identity index: the sink looks up which events are already stored before inserting. Ids are
      // often random, so fine granules keep a lookup from reading every key of the namespace.
      sql`CREATE TABLE IF NOT EXISTS ${db}.event_keys (
        namespace String,
        source String,
        id String,
        time_ms Int64
      ) ENGINE = ReplacingMergeTree()
      ORDER BY (namespace, source, id)
      SETTINGS index_granularity = 256`,
      // Filled by the same INSERT that writes events, so an event's key exists iff the event does.
      sql`CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.event_keys_mv TO ${db}.event_keys
        AS SELECT namespace, source, id, time_ms FROM ${db}.events`,
      sql`CREATE TABLE IF NOT EXISTS ${db}.dead_letters (
        namespace String,
        received_at_ms Int64,
        received_at DateTime('UTC'),
        reason String,
        position String,
        payload String
      ) ENGINE = MergeTree()
      PARTITION BY toYYYYMM(received_at)
      ORDER BY (namespace, received_at_ms)`,
    ],
  },
  {
    version: 2,
    name: 'event keys partitioned by month, like events',
    // One retention rule: dropping a month of events (ALTER TABLE ... DROP PARTITION) can drop that
    // month's identities with the same partition id. Rebuilt under the same name, since the view
    // names its target table. Keys of events stored while the view is being replaced are copied
    // from events at the end, so none goes missing even with a sink running.
    statements: (db) => {
      const since = Date.now() - 60_000;
      return [
        // Left by a run that stopped after the swap; its keys were copied before it.
        sql`DROP TABLE IF EXISTS ${db}.event_keys_unpartitioned`,
        sql`CREATE TABLE IF NOT EXISTS ${db}.event_keys_by_month (
          namespace String,
          source String,
          id String,
          time_ms Int64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(time_ms, 1000), 'UTC'))
        ORDER BY (namespace, source, id)
        SETTINGS index_granularity = 256`,
        sql`DROP TABLE IF EXISTS ${db}.event_keys_mv`,
        sql`INSERT INTO ${db}.event_keys_by_month SELECT namespace, source, id, time_ms FROM ${db}.event_keys`,
        sql`RENAME TABLE ${db}.event_keys TO ${db}.event_keys_unpartitioned, ${db}.event_keys_by_month TO ${db}.event_keys`,
        sql`CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.event_keys_mv TO ${db}.event_keys
          AS SELECT namespace, source, id, time_ms FROM ${db}.events`,
        sql`INSERT INTO ${db}.event_keys SELECT namespace, source, id, time_ms FROM ${db}.events
          WHERE stored_at_ms >= ${since}`,
        sql`DROP TABLE IF EXISTS ${db}.event_keys_unpartitioned`,
      ];
    },
  },
];

/** Applies every migration not yet applied (up to `upTo`, for tests of an upgrade). */
export async function migrateClickHouse(ch: ClickHouse, upTo = Number.POSITIVE_INFINITY): Promise<number[]> {
  const db = identifier(ch.database);
  await ch.command(sql`CREATE DATABASE IF NOT EXISTS ${db}`);
  await ch.command(
    sql`CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, applied_at DateTime)
        ENGINE = MergeTree() ORDER BY version`,
  );
  const applied = new Set(
    (await ch.query<{ version: number }>(sql`SELECT version FROM ${db}.schema_migrations`)).map((r) =>
      Number(r.version),
    ),
  );
  const ran: number[] = [];
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version) || migration.version > upTo) continue;
    for (const statement of migration.statements(db)) await ch.command(statement);
    await ch.insert('schema_migrations', [
      { version: migration.version, name: migration.name, applied_at: Math.floor(Date.now() / 1000) },
    ]);
    ran.push(migration.version);
  }
  return ran;
}

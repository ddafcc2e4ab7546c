import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClickHouse, createClickHouse } from '../src/clickhouse/client.ts';
import { migrateClickHouse } from '../src/clickhouse/migrations.ts';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { cloudEvent, drain, postEvents, useTestApp } from './support/env.ts';

const ctx = useTestApp();
const post = (events: unknown[]) => postEvents(ctx.app, ctx.key, events);
const db = () => identifier(ctx.env.ch.database);

async function partitions(table: string): Promise<string[]> {
  const rows = await ctx.env.ch.query<{ partition: string }>(
    sql`SELECT DISTINCT partition FROM system.parts
        WHERE database = ${ctx.env.ch.database} AND table = ${table} AND active ORDER BY partition`,
  );
  return rows.map((r) => r.partition);
}

const physicalRows = async (id: string) => {
  const [row] = await ctx.env.ch.query<{ n: string }>(
    sql`SELECT count() AS n FROM ${db()}.events WHERE id = ${id}`,
  );
  return Number(row?.n);
};

describe('retention: events and their identities follow one rule, a month at a time', () => {
  it('drops a month of identities with its month of events; a later copy from that month is stored anew', async () => {
    const january = cloudEvent({ id: 'in-january', time: '2026-01-15T00:00:00Z' });
    const february = cloudEvent({ id: 'in-february', time: '2026-02-15T00:00:00Z' });
    expect((await post([january, february])).statusCode).toBe(204);
    await drain(ctx.env);
    expect(await partitions('events')).toEqual(['202601', '202602']);
    expect(await partitions('event_keys')).toEqual(['202601', '202602']);

    // What the README tells an operator to run to drop January.
    await ctx.env.ch.command(sql`ALTER TABLE ${db()}.events DROP PARTITION 202601`);
    await ctx.env.ch.command(sql`ALTER TABLE ${db()}.event_keys DROP PARTITION 202601`);
    expect(await partitions('event_keys')).toEqual(['202602']);

    expect((await post([january, february])).statusCode).toBe(204);
    await drain(ctx.env);
    expect(await physicalRows('in-january')).toBe(1); // its identity went with it: stored again
    expect(await physicalRows('in-february')).toBe(1); // still known: not stored twice
  });
});

describe('migration 2: event keys partitioned by month', () => {
  const database = `mlt_upgrade_${Date.now().toString(36)}`;
  let ch: ClickHouse;
  beforeAll(() => {
    ch = createClickHouse(ctx.env.config.clickhouse, database);
  });
  afterAll(async () => {
    await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
    await ch.close();
  });

  it('keeps every identity stored before the upgrade, and keeps filling them after', async () => {
    const target = identifier(database);
    expect(await migrateClickHouse(ch, 1)).toEqual([1]);
    await ch.command(
      sql`INSERT INTO ${target}.events (namespace, id, source, type, subject, time, time_ms)
          VALUES ('acme', 'before', 'test', 't', 's', toDateTime(1767225600), 1767225600000)`,
    );
    expect(await migrateClickHouse(ch)).toEqual([2]);
    await ch.command(
      sql`INSERT INTO ${target}.events (namespace, id, source, type, subject, time, time_ms)
          VALUES ('acme', 'after', 'test', 't', 's', toDateTime(1769904000), 1769904000000)`,
    );
    const keys = await ch.query<{ id: string }>(
      sql`SELECT DISTINCT id FROM ${target}.event_keys ORDER BY id`,
    );
    expect(keys.map((k) => k.id)).toEqual(['after', 'before']);
    const tables = await ch.query<{ name: string }>(
      sql`SELECT name FROM system.tables WHERE database = ${database} ORDER BY name`,
    );
    expect(tables.map((t) => t.name)).not.toContain('event_keys_unpartitioned');
    expect(await migrateClickHouse(ch)).toEqual([]);
  });
});

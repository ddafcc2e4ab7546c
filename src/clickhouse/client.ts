import { type ClickHouseClient, createClient } from '@clickhouse/client';
import type { Config } from '../config.ts';
import type { Sql } from './sql.ts';

/** The narrow ClickHouse surface the domains use: SQL built by `sql`, rows as JSON. */
export type ClickHouse = {
  readonly database: string;
  query<Row>(query: Sql): Promise<Row[]>;
  command(query: Sql): Promise<void>;
  insert(table: string, rows: readonly object[]): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export function createClickHouse(config: Config['clickhouse'], database = config.database): ClickHouse {
  const client: ClickHouseClient = createClient({
    url: config.url,
    username: config.username,
    password: config.password,
    // The database may not exist yet (migrate creates it), so queries name it explicitly instead.
    request_timeout: 60_000,
    compression: { request: false, response: false },
  });
  return {
    database,
    async query<Row>(query: Sql) {
      const result = await client.query({ query: query.text, format: 'JSONEachRow' });
      return result.json<Row>();
    },
    async command(query: Sql) {
      await client.command({ query: query.text });
    },
    async insert(table, rows) {
      if (rows.length === 0) return;
      await client.insert({ table: `${database}.${table}`, values: rows as object[], format: 'JSONEachRow' });
    },
    async ping() {
      const result = await client.ping();
      if (!result.success) throw result.error;
    },
    close: () => client.close(),
  };
}

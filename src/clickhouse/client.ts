import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { Config } from '../config.ts';
import type { Sql } from './sql.ts';

/** The narrow ClickHouse surface the domains use: SQL built by `sql`, rows as JSON. */
export type ClickHouse = {
  readonly database: string;
  query<Row>(query: Sql): Promise<Row[]>;
  command(query: Sql): Promise<void>;
  insert(table: string, rows: readonly object[]): Promise<void>;
  /** Inserts rows already encoded as JSONEachRow lines. */
  insertLines(table: string, lines: readonly string[]): Promise<void>;
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
    // Failures reach the caller, which logs them with context; the client's own console logger would repeat them.
    log: { level: ClickHouseLogLevel.OFF },
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
    async insertLines(table, lines) {
      if (lines.length === 0) return;
      const result = await client.exec({
        query: `INSERT INTO ${database}.${table} FORMAT JSONEachRow`,
        values: Readable.from([lines.join('\n')]),
      });
      result.stream.resume(); // drain the (empty) answer so the socket returns to the pool
      await finished(result.stream);
    },
    async ping() {
      const result = await client.ping();
      if (!result.success) throw result.error;
    },
    close: () => client.close(),
  };
}

/**
 * ClickHouse exception codes that mean "this data cannot be stored", as opposed to an outage,
 * overload or misconfiguration (which must be retried, never dead-lettered).
 */
const DATA_REJECTED_CODES = new Set([
  '6', // CANNOT_PARSE_TEXT
  '25', // CANNOT_PARSE_ESCAPE_SEQUENCE (e.g. a lone UTF-16 surrogate)
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '69', // ARGUMENT_OUT_OF_BOUND
  '70', // CANNOT_CONVERT_TYPE
  '72', // CANNOT_PARSE_NUMBER
  '117', // INCORRECT_DATA
  '128', // TOO_LARGE_ARRAY_SIZE
  '131', // TOO_LARGE_STRING_SIZE
]);

/** The server's exception code; the client parses only the current message format, not 18.16's. */
export function clickHouseErrorCode(err: unknown): string | undefined {
  if (err instanceof ClickHouseError) return err.code;
  if (err instanceof Error) return /^Code: (\d+), e\.displayText\(\) = DB::Exception/.exec(err.message)?.[1];
  return undefined;
}

export function isDataRejected(err: unknown): boolean {
  const code = clickHouseErrorCode(err);
  return code !== undefined && DATA_REJECTED_CODES.has(code);
}

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
  /**
   * Inserts rows already encoded as JSONEachRow lines, streamed line by line (never joined into
   * one string), in one INSERT. `signal` aborts the request.
   */
  insertLines(table: string, lines: readonly string[], signal?: AbortSignal): Promise<void>;
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
    async insertLines(table, lines, signal) {
      if (lines.length === 0) return;
      const result = await client.exec({
        query: `INSERT INTO ${database}.${table} FORMAT JSONEachRow`,
        values: Readable.from(withNewlines(lines), { objectMode: false }),
        abort_signal: signal,
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

/** Lines joined into chunks of about CHUNK_CHARS: few writes, and no string the size of the body. */
const CHUNK_CHARS = 64 * 1024;
function* withNewlines(lines: readonly string[]): Generator<string> {
  let chunk = '';
  for (const line of lines) {
    if (chunk.length > 0 && chunk.length + line.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
    if (line.length >= CHUNK_CHARS) yield `${line}\n`;
    else chunk += `${line}\n`;
  }
  if (chunk.length > 0) yield chunk;
}

/** The server's exception code; the client parses only the current message format, not 18.16's. */
export function clickHouseErrorCode(err: unknown): string | undefined {
  if (err instanceof ClickHouseError) return err.code;
  if (err instanceof Error) return /^Code: (\d+), e\.displayText\(\) = DB::Exception/.exec(err.message)?.[1];
  return undefined;
}

import type { ClickHouse } from '../clickhouse/client.ts';
import { dateTimeSeconds, identifier, join, quoteString, type Sql, sql } from '../clickhouse/sql.ts';
import { flattenData, type LogEvent } from './event.ts';
import { parseJson, stringifyJson } from './json.ts';

/** ClickHouse access for stored events and dead letters: the source of truth for usage. */
export type EventStore = ReturnType<typeof createEventStore>;

export type StoredEvent = LogEvent & { storedAt: number };

export type DeadLetter = { namespace: string; reason: string; position: string; payload: string };

export type ListEventsFilter = {
  namespace: string;
  from: number;
  to: number;
  ingestedFrom?: number;
  ingestedTo?: number;
  subject?: string;
  type?: string;
  id?: string;
  limit: number;
};

type EventRow = {
  id: string;
  source: string;
  type: string;
  subject: string;
  time_ms: string;
  datacontenttype: string;
  dataschema: string;
  data: string;
  ingested_at_ms: string;
  stored_at_ms: string;
};

/**
 * One JSONEachRow line for the events table. Written by hand because `data_decimals` must reach
 * ClickHouse as bare decimal literals (exact text, more digits than a double), which no JSON
 * encoder emits; the texts come from decimalFromText and hold only digits, '.' and '-'.
 */
export function toEventRow(event: LogEvent, storedAt: number): string {
  const flat = flattenData(event.data);
  const row = JSON.stringify({
    namespace: event.namespace,
    id: event.id,
    source: event.source,
    type: event.type,
    subject: event.subject,
    time: Math.floor(event.time / 1000),
    time_ms: event.time,
    ingested_at_ms: event.ingestedAt,
    stored_at_ms: storedAt,
    datacontenttype: event.datacontenttype ?? '',
    dataschema: event.dataschema ?? '',
    data: event.data === null ? '' : stringifyJson(event.data),
    data_paths: flat.paths,
    data_values: flat.values,
    data_kinds: flat.kinds,
  });
  return `${row.slice(0, -1)},"data_decimals":[${flat.decimals.join(',')}]}`;
}

/**
 * Current ClickHouse refuses an INSERT touching more than 100 partitions (months, here) by default
 * (max_partitions_per_insert_block); 18.16 has no such limit.
 */
export const MAX_MONTHS_PER_INSERT = 100;

/** The events split into groups of at most MAX_MONTHS_PER_INSERT months, in month order. */
export function byMonthGroups(events: readonly LogEvent[]): LogEvent[][] {
  const byMonth = new Map<number, LogEvent[]>();
  for (const event of events) {
    const date = new Date(event.time);
    const month = date.getUTCFullYear() * 12 + date.getUTCMonth();
    const members = byMonth.get(month);
    if (members) members.push(event);
    else byMonth.set(month, [event]);
  }
  if (byMonth.size <= MAX_MONTHS_PER_INSERT) return [[...events]];
  const months = [...byMonth.keys()].sort((a, b) => a - b);
  const groups: LogEvent[][] = [];
  for (let i = 0; i < months.length; i += MAX_MONTHS_PER_INSERT) {
    groups.push(months.slice(i, i + MAX_MONTHS_PER_INSERT).flatMap((m) => byMonth.get(m) ?? []));
  }
  return groups;
}

type Identity = Pick<LogEvent, 'namespace' | 'source' | 'id'>;

/** Bytes of query text per lookup: well under ClickHouse's max_query_size (262,144 bytes). */
const LOOKUP_QUERY_BYTES = 128 * 1024;

/** One lookup term per (namespace, source) group of ids, so one query serves many sources. */
type LookupGroup = { namespace: string; source: string; ids: string[] };

/**
 * The groups' ids as query-sized lists of terms. Sizes are counted in bytes of the quoted
 * literals, as ClickHouse counts them: a multi-byte or escaped id takes more than its length.
 */
function* lookupQueries(groups: Iterable<LookupGroup>): Generator<Sql[]> {
  let terms: Sql[] = [];
  let bytes = 0;
  for (const { namespace, source, ids } of groups) {
    const termBytes = Buffer.byteLength(quoteString(namespace) + quoteString(source)) + 64;
    let chunk: string[] = [];
    let chunkBytes = termBytes;
    for (const id of ids) {
      const idBytes = Buffer.byteLength(quoteString(id)) + 2;
      if (bytes + chunkBytes + idBytes > LOOKUP_QUERY_BYTES) {
        if (chunk.length > 0) terms.push(lookupTerm(namespace, source, chunk));
        if (terms.length > 0) yield terms;
        terms = [];
        bytes = 0;
        chunk = [];
        chunkBytes = termBytes;
      }
      chunk.push(id);
      chunkBytes += idBytes;
    }
    if (chunk.length > 0) {
      terms.push(lookupTerm(namespace, source, chunk));
      bytes += chunkBytes;
    }
  }
  if (terms.length > 0) yield terms;
}

function lookupTerm(namespace: string, source: string, ids: string[]): Sql {
  return sql`(namespace = ${namespace} AND source = ${source} AND id IN ${ids})`;
}

function fromDbEvent(namespace: string, row: EventRow): StoredEvent {
  return {
    namespace,
    id: row.id,
    source: row.source,
    type: row.type,
    subject: row.subject,
    time: Number(row.time_ms),
    datacontenttype: row.datacontenttype || null,
    dataschema: row.dataschema || null,
    data: row.data ? (parseJson(row.data) as Record<string, unknown>) : null,
    ingestedAt: Number(row.ingested_at_ms),
    storedAt: Number(row.stored_at_ms),
  };
}

export function createEventStore(ch: ClickHouse) {
  const db = identifier(ch.database);
  return {
    /**
     * One INSERT of rows made by toEventRow: ClickHouse writes the block and, through the view, its
     * keys. At most MAX_MONTHS_PER_INSERT months at once (see byMonthGroups).
     */
    ping: () => ch.ping(),

    async insertRows(rows: readonly string[], signal?: AbortSignal): Promise<void> {
      await ch.insertLines('events', rows, signal);
    },

    /**
     * The subset of the given identities that is already stored. Ids are asked per (namespace,
     * source) as plain IN lists, OR-ed into queries that stay under ClickHouse's max_query_size:
     * 18.16 parses a list of tuples several times slower than a list of strings.
     */
    async existingKeys(events: readonly Identity[]): Promise<Identity[]> {
      const groups = new Map<string, LookupGroup>();
      for (const { namespace, source, id } of events) {
        const group = JSON.stringify([namespace, source]);
        const members = groups.get(group);
        if (members) members.ids.push(id);
        else groups.set(group, { namespace, source, ids: [id] });
      }
      const found: Identity[] = [];
      for (const terms of lookupQueries(groups.values())) {
        found.push(
          ...(await ch.query<Identity>(
            sql`SELECT DISTINCT namespace, source, id FROM ${db}.event_keys WHERE ${join(terms, ' OR ')}`,
          )),
        );
      }
      return found;
    },

    async listEvents(filter: ListEventsFilter): Promise<StoredEvent[]> {
      const where: Sql[] = [
        sql`namespace = ${filter.namespace}`,
        // The seconds column narrows by primary key; the milliseconds column makes the bound exact.
        sql`time >= toDateTime(${dateTimeSeconds(filter.from)}, 'UTC')`,
        sql`time <= toDateTime(${dateTimeSeconds(filter.to)}, 'UTC')`,
        sql`time_ms >= ${filter.from}`,
        sql`time_ms <= ${filter.to}`,
      ];
      if (filter.ingestedFrom !== undefined) where.push(sql`ingested_at_ms >= ${filter.ingestedFrom}`);
      if (filter.ingestedTo !== undefined) where.push(sql`ingested_at_ms <= ${filter.ingestedTo}`);
      if (filter.subject !== undefined) where.push(sql`position(subject, ${filter.subject}) > 0`);
      if (filter.type !== undefined) where.push(sql`type = ${filter.type}`);
      if (filter.id !== undefined) where.push(sql`position(id, ${filter.id}) > 0`);
      const rows = await ch.query<EventRow>(
        sql`SELECT id, source, type, subject, time_ms, datacontenttype, dataschema, data, ingested_at_ms, stored_at_ms
            FROM ${db}.events FINAL
            WHERE ${join(where, ' AND ')}
            ORDER BY time_ms DESC, ingested_at_ms DESC, source, id
            LIMIT ${filter.limit}`,
      );
      return rows.map((row) => fromDbEvent(filter.namespace, row));
    },

    /** Exact count of distinct stored events of a namespace (FINAL collapses redelivered copies). */
    async countEvents(namespace: string): Promise<number> {
      const [row] = await ch.query<{ n: string }>(
        sql`SELECT count() AS n FROM ${db}.events FINAL WHERE namespace = ${namespace}`,
      );
      return Number(row?.n ?? 0);
    },

    async insertDeadLetters(letters: readonly DeadLetter[], receivedAt = Date.now()): Promise<void> {
      await ch.insert(
        'dead_letters',
        letters.map((letter) => ({
          namespace: letter.namespace.toWellFormed(),
          position: letter.position,
          // A record the sink could not decode may hold lone surrogates, which ClickHouse refuses.
          reason: letter.reason.toWellFormed(),
          payload: letter.payload.toWellFormed(),
          received_at_ms: receivedAt,
          received_at: Math.floor(receivedAt / 1000),
        })),
      );
    },

    async listDeadLetters(namespace: string, limit: number) {
      const rows = await ch.query<DeadLetter & { received_at_ms: string }>(
        sql`SELECT namespace, reason, position, payload, received_at_ms FROM ${db}.dead_letters
            WHERE namespace = ${namespace} ORDER BY received_at_ms DESC LIMIT ${limit}`,
      );
      return rows.map(({ received_at_ms, ...letter }) => ({ ...letter, receivedAt: Number(received_at_ms) }));
    },
  };
}

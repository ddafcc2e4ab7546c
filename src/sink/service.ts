import type { Logger } from 'pino';
import {
  type BatchContext,
  type EventLog,
  LeaseLostError,
  type LogRecord,
  type Subscription,
} from '../eventlog/event-log.ts';
import { decodeLogEvent, eventKey, type LogEvent } from '../events/event.ts';
import { byMonthGroups, type DeadLetter, type EventStore, toEventRow } from '../events/store.ts';
import { sleep } from '../lib/time.ts';
import type { Metrics } from '../ops/metrics.ts';
import { classifyFailure, type FailureKind } from './failures.ts';
import type { SinkProgress } from './progress.ts';

export type SinkOptions = {
  group: string;
  consumer: string;
  batchSize: number;
  batchWaitMs: number;
  /** One INSERT carries at most about this many bytes of rows; a larger batch goes in as several. */
  insertMaxBytes: number;
  /** A failure that is neither bad data nor an outage is tried this many times before splitting. */
  splitAfterFailures: number;
};

export type Sink = ReturnType<typeof createSink>;

type Deps = {
  log: EventLog;
  store: EventStore;
  metrics: Metrics;
  logger: Logger;
  /** Where the time of the last stored batch is kept for /readyz of every process. */
  progress?: SinkProgress;
};

/** A slice of a batch on its way into one INSERT: the events and their rows, index for index. */
type Piece = { events: LogEvent[]; rows: string[] };

/** Direct calls (tests, tools) write without a lease to check. */
const UNGUARDED: BatchContext = { writeGuard: async () => undefined };

const backoffMs = (attempt: number) => Math.min(100 * 2 ** attempt, 2_000);

/**
 * Moves events from the log into ClickHouse, exactly once in effect (invariants 1 and 3):
 * drop copies inside the batch, drop identities already stored, insert the rest, and only then
 * let the log acknowledge. A crash before the acknowledgement redelivers the batch, and the
 * identity lookup turns the redelivery into a no-op.
 *
 * What a batch cannot block: an event that cannot be decoded, turned into a row, or stored is
 * isolated and dead-lettered with the reason (see failures.ts for how a failure is told apart from
 * an outage, which is the only thing retried as a whole); rows go in INSERTs of bounded size, so no
 * batch is too big to store.
 */
export function createSink({ log, store, metrics, logger, progress }: Deps, options: SinkOptions) {
  // Failed writes already counted where they happened; any other failure is counted as it leaves.
  const counted = new WeakSet<object>();
  const countFailure = (err: unknown, kind: FailureKind | 'lease_lost') => {
    metrics.sinkFailures.inc({ kind });
    if (typeof err === 'object' && err !== null) counted.add(err);
  };

  /** Stores a batch; rejects (for the log to redeliver it) on an outage or a lost lease. */
  async function storeBatch(
    records: readonly LogRecord[],
    batch: BatchContext = UNGUARDED,
  ): Promise<{ stored: number; duplicates: number }> {
    try {
      return await storeBatchOnce(records, batch);
    } catch (err) {
      if (typeof err !== 'object' || err === null || !counted.has(err)) {
        countFailure(err, err instanceof LeaseLostError ? 'lease_lost' : classifyFailure(err));
      }
      throw err;
    }
  }

  async function storeBatchOnce(
    records: readonly LogRecord[],
    batch: BatchContext,
  ): Promise<{ stored: number; duplicates: number }> {
    const started = process.hrtime.bigint();
    const fresh = new Map<string, LogEvent>();
    // Each event's record: a dead letter keeps the record as it was, not a re-encoding of it.
    const recordOf = new Map<LogEvent, LogRecord>();
    const deadLetters: DeadLetter[] = [];
    let duplicates = 0;
    for (const record of records) {
      let event: LogEvent;
      try {
        event = decodeLogEvent(record.value);
      } catch (err) {
        deadLetters.push({
          namespace: namespaceOf(record.key),
          reason: `undecodable log record: ${messageOf(err)}`,
          position: record.position,
          payload: record.value,
        });
        metrics.deadLetters.inc({ reason: 'undecodable' });
        continue;
      }
      const key = eventKey(event);
      if (fresh.has(key)) duplicates += 1;
      else {
        fresh.set(key, event);
        recordOf.set(event, record);
      }
    }

    for (const row of await store.existingKeys([...fresh.values()])) {
      if (fresh.delete(eventKey(row))) duplicates += 1;
    }

    const letterFor = (event: LogEvent, reason: string): DeadLetter => ({
      namespace: event.namespace,
      reason,
      position: recordOf.get(event)?.position ?? '',
      payload: recordOf.get(event)?.value ?? '',
    });

    /**
     * Inserts the piece. Bad data is halved until the culprits are alone; an unclassified failure
     * is retried `tries` times first (halves of a split get one try each, so finding one culprit in
     * 5,000 costs about 13 INSERTs, and a lone event gets the full count again). Returns the events
     * set aside, as dead letters; an outage or a lost lease is thrown for the log to redeliver.
     */
    async function insertOrSetAside(piece: Piece, tries: number): Promise<DeadLetter[]> {
      const [only] = piece.events;
      if (!only) return [];
      const attempts = piece.events.length === 1 ? options.splitAfterFailures : tries;
      for (let attempt = 1; ; attempt++) {
        const signal = await batch.writeGuard();
        let kind: FailureKind;
        try {
          await store.insertRows(piece.rows, signal);
          return [];
        } catch (err) {
          if (signal?.aborted)
            throw new LeaseLostError('the INSERT outlasted the sink lease', { cause: err });
          kind = classifyFailure(err);
          countFailure(err, kind);
          if (kind === 'outage') throw err;
          if (kind === 'unknown' && attempt < attempts) {
            logger.warn({ err, attempt, events: piece.events.length }, 'insert failed; retrying');
            await sleep(backoffMs(attempt));
            continue;
          }
          if (piece.events.length === 1) {
            // An outage the classification did not recognise must not dead-letter good events.
            if (
              kind === 'unknown' &&
              !(await store.ping().then(
                () => true,
                () => false,
              ))
            )
              throw err;
            metrics.deadLetters.inc({
              reason: kind === 'data' ? 'refused_by_clickhouse' : 'failed_repeatedly',
            });
            const reason =
              kind === 'data'
                ? `ClickHouse refused the event: ${messageOf(err)}`
                : `storing the event failed ${attempt} times while ClickHouse answered: ${messageOf(err)}`;
            return [letterFor(only, reason)];
          }
        }
        const half = Math.ceil(piece.events.length / 2);
        const split = (from: number, to?: number) => ({
          events: piece.events.slice(from, to),
          rows: piece.rows.slice(from, to),
        });
        return [...(await insertOrSetAside(split(0, half), 1)), ...(await insertOrSetAside(split(half), 1))];
      }
    }

    // Rows are built one event at a time and sent in pieces of at most insertMaxBytes; a row that
    // cannot be built (too large for a string, say) is that event's problem alone. One group of
    // months per INSERT (one group, unless a backfill spans years); each piece is set aside on its
    // own, so a refused event never makes an earlier piece's INSERT run again.
    const storedAt = Date.now();
    let setAside = 0;
    for (const group of byMonthGroups([...fresh.values()])) {
      let piece: Piece = { events: [], rows: [] };
      let bytes = 0;
      for (const event of group) {
        let row: string;
        try {
          row = toEventRow(event, storedAt);
        } catch (err) {
          deadLetters.push(letterFor(event, `the event cannot be turned into a row: ${messageOf(err)}`));
          metrics.deadLetters.inc({ reason: 'unbuildable' });
          setAside += 1;
          continue;
        }
        const rowBytes = Buffer.byteLength(row);
        if (piece.rows.length > 0 && bytes + rowBytes > options.insertMaxBytes) {
          const refused = await insertOrSetAside(piece, options.splitAfterFailures);
          deadLetters.push(...refused);
          setAside += refused.length;
          piece = { events: [], rows: [] };
          bytes = 0;
        }
        piece.events.push(event);
        piece.rows.push(row);
        bytes += rowBytes;
      }
      const refused = await insertOrSetAside(piece, options.splitAfterFailures);
      deadLetters.push(...refused);
      setAside += refused.length;
    }
    if (deadLetters.length > 0) {
      await storeDeadLetters(deadLetters, batch);
      for (const letter of deadLetters) logger.error({ position: letter.position }, letter.reason);
    }
    const stored = fresh.size - setAside;

    metrics.eventsStored.inc(stored);
    metrics.duplicatesDropped.inc(duplicates);
    metrics.sinkBatchSize.observe(records.length);
    metrics.sinkBatchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    const at = Date.now();
    metrics.sinkLastStoredSeconds.set(at / 1000);
    // Best effort: readiness must not make a Redis hiccup stop a Kafka sink.
    progress?.record(at).catch((err: unknown) => logger.warn({ err }, 'could not record sink progress'));
    return { stored, duplicates };
  }

  /**
   * Dead letters in one INSERT; if ClickHouse refuses that, one by one, and a letter it still
   * refuses is kept with its reason and without the payload, so the batch can be acknowledged.
   */
  async function storeDeadLetters(letters: DeadLetter[], batch: BatchContext) {
    await batch.writeGuard();
    try {
      await store.insertDeadLetters(letters);
      return;
    } catch (err) {
      if (classifyFailure(err) === 'outage') throw err;
    }
    for (const letter of letters) {
      try {
        await store.insertDeadLetters([letter]);
      } catch (err) {
        if (classifyFailure(err) === 'outage') throw err;
        const reason = `${letter.reason} (the payload could not be kept: ${messageOf(err)})`;
        await store.insertDeadLetters([{ ...letter, reason, payload: '' }]);
      }
    }
  }

  let subscription: Subscription | undefined;
  return {
    storeBatch,
    async start(): Promise<Subscription> {
      subscription = await log.subscribe(
        {
          group: options.group,
          consumer: options.consumer,
          maxBatchSize: options.batchSize,
          maxWaitMs: options.batchWaitMs,
        },
        async (records, batch) => {
          const result = await storeBatch(records, batch);
          logger.debug({ records: records.length, ...result }, 'sink batch stored');
        },
      );
      return subscription;
    },
    /** Finishes the batch in hand and acknowledges it; takes nothing new. */
    async stop(): Promise<void> {
      await subscription?.stop();
    },
  };
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 500);
}

/** A record's key is the JSON identity [namespace, source, id]; a foreign record may have another. */
function namespaceOf(key: string): string {
  try {
    const parsed: unknown = JSON.parse(key);
    return Array.isArray(parsed) && typeof parsed[0] === 'string' ? parsed[0] : '';
  } catch {
    return '';
  }
}

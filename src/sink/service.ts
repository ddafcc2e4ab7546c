import type { Logger } from 'pino';
import { isDataRejected } from '../clickhouse/client.ts';
import type { EventLog, LogRecord, Subscription } from '../eventlog/event-log.ts';
import { decodeLogEvent, encodeLogEvent, eventKey, type LogEvent } from '../events/event.ts';
import { byMonthGroups, type DeadLetter, type EventStore } from '../events/store.ts';
import type { Metrics } from '../ops/metrics.ts';

export type SinkOptions = {
  group: string;
  consumer: string;
  batchSize: number;
  batchWaitMs: number;
};

export type Sink = ReturnType<typeof createSink>;

type Deps = { log: EventLog; store: EventStore; metrics: Metrics; logger: Logger };

/**
 * Moves events from the log into ClickHouse, exactly once in effect (invariants 1 and 3):
 * drop copies inside the batch, drop identities already stored, insert the rest in one INSERT,
 * and only then let the log acknowledge. A crash before the acknowledgement redelivers the batch,
 * and the identity lookup turns the redelivery into a no-op.
 */
export function createSink({ log, store, metrics, logger }: Deps, options: SinkOptions) {
  async function storeBatch(records: readonly LogRecord[]): Promise<{ stored: number; duplicates: number }> {
    const started = process.hrtime.bigint();
    const fresh = new Map<string, LogEvent>();
    const positions = new Map<LogEvent, string>();
    const deadLetters: DeadLetter[] = [];
    let duplicates = 0;
    for (const record of records) {
      let event: LogEvent;
      try {
        event = decodeLogEvent(record.value);
      } catch (err) {
        deadLetters.push({
          namespace: namespaceOf(record.key),
          reason: `undecodable log record: ${err instanceof Error ? err.message.slice(0, 500) : String(err)}`,
          position: record.position,
          payload: record.value,
        });
        continue;
      }
      const key = eventKey(event);
      if (fresh.has(key)) duplicates += 1;
      else {
        fresh.set(key, event);
        positions.set(event, record.position);
      }
    }

    for (const row of await store.existingKeys([...fresh.values()])) {
      if (fresh.delete(eventKey(row))) duplicates += 1;
    }
    const undecodable = deadLetters.length;
    // One INSERT per group of months (one, unless a backfill spans years); each group is set aside
    // on its own, so a refused event never makes an earlier group's INSERT run again.
    const refused: DeadLetter[] = [];
    for (const group of byMonthGroups([...fresh.values()])) {
      refused.push(...(await insertOrSetAside(group, positions)));
    }
    deadLetters.push(...refused);
    if (deadLetters.length > 0) {
      await store.insertDeadLetters(deadLetters);
      for (const letter of deadLetters) logger.error({ position: letter.position }, letter.reason);
      if (undecodable > 0) metrics.deadLetters.inc({ reason: 'undecodable' }, undecodable);
      if (refused.length > 0) metrics.deadLetters.inc({ reason: 'refused_by_clickhouse' }, refused.length);
    }
    const stored = fresh.size - refused.length;

    metrics.eventsStored.inc(stored);
    metrics.duplicatesDropped.inc(duplicates);
    metrics.sinkBatchSize.observe(records.length);
    metrics.sinkBatchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return { stored, duplicates };
  }

  /**
   * Inserts the events; if ClickHouse refuses the data itself (not an outage), halves the batch
   * until the refused events are isolated, so one bad event cannot block the log forever.
   * Returns the refused events as dead letters.
   */
  async function insertOrSetAside(
    events: LogEvent[],
    positions: Map<LogEvent, string>,
  ): Promise<DeadLetter[]> {
    if (events.length === 0) return [];
    try {
      await store.insertEvents(events);
      return [];
    } catch (err) {
      if (!isDataRejected(err)) throw err;
      const [only] = events;
      if (events.length === 1 && only) {
        return [
          {
            namespace: only.namespace,
            reason: `ClickHouse refused the event: ${(err as Error).message.slice(0, 500)}`,
            position: positions.get(only) ?? '',
            payload: encodeLogEvent(only),
          },
        ];
      }
      const half = Math.ceil(events.length / 2);
      return [
        ...(await insertOrSetAside(events.slice(0, half), positions)),
        ...(await insertOrSetAside(events.slice(half), positions)),
      ];
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
        async (records) => {
          const result = await storeBatch(records);
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

/** A record's key is the JSON identity [namespace, source, id]; a foreign record may have another. */
function namespaceOf(key: string): string {
  try {
    const parsed: unknown = JSON.parse(key);
    return Array.isArray(parsed) && typeof parsed[0] === 'string' ? parsed[0] : '';
  } catch {
    return '';
  }
}

import type { Logger } from 'pino';
import type { EventLog, LogRecord, Subscription } from '../eventlog/event-log.ts';
import { decodeLogEvent, eventKey, type LogEvent } from '../events/event.ts';
import type { DeadLetter, EventStore } from '../events/store.ts';
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
      else fresh.set(key, event);
    }

    const stored = await store.existingKeys([...fresh.values()]);
    for (const row of stored) {
      if (fresh.delete(eventKey(row))) duplicates += 1;
    }
    const events = [...fresh.values()];
    await store.insertEvents(events);
    if (deadLetters.length > 0) {
      await store.insertDeadLetters(deadLetters);
      for (const letter of deadLetters) logger.error({ position: letter.position }, letter.reason);
      metrics.deadLetters.inc({ reason: 'undecodable' }, deadLetters.length);
    }

    metrics.eventsStored.inc(events.length);
    metrics.duplicatesDropped.inc(duplicates);
    metrics.sinkBatchSize.observe(records.length);
    metrics.sinkBatchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return { stored: events.length, duplicates };
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

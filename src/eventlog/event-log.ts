/**
 * The event log between the api and the sink: Kafka in production, Redis Streams on one machine.
 * Both transports keep the same promises, pinned by test/eventlog-contract.ts:
 * - `publish` resolves only after the log durably accepted every message, or rejects (on Redis
 *   having published none of them; on Kafka possibly some, which a retry makes whole, since the
 *   sink stores each identity once);
 * - a subscriber's batch is acknowledged only after its handler resolved; a batch whose handler
 *   threw, or whose consumer died, is delivered again (to this or another consumer of the group).
 */
export type LogMessage = { key: string; value: string };

export type LogRecord = LogMessage & {
  /** Transport position, for dead letters and logs. */ position: string;
};

export type SubscribeOptions = {
  group: string;
  consumer: string;
  maxBatchSize: number;
  maxWaitMs: number;
};

/** What a handler may ask of the transport about the batch in hand. */
export type BatchContext = {
  /**
   * Call right before each write the batch causes. Resolves while this consumer may still write it
   * (Redis Streams: it holds the group's lease, renewed now; Kafka: it still owns the partition),
   * with a signal that aborts a write which would outlast that right. Rejects with LeaseLostError
   * otherwise: another consumer has the batch, and writing it too could store an event twice.
   */
  writeGuard(): Promise<AbortSignal | undefined>;
};

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

export type BatchHandler = (records: LogRecord[], batch: BatchContext) => Promise<void>;

export type Subscription = {
  /** Stops fetching, lets the batch in hand finish and be acknowledged, then resolves. */
  stop(): Promise<void>;
  /** Rejects if the consume loop died of an error it could not retry. */
  readonly done: Promise<void>;
};

export type EventLog = {
  readonly kind: 'redis' | 'kafka';
  /** Creates what the transport needs (the Kafka topic); safe to repeat. Run by `meterline migrate`. */
  setup(): Promise<void>;
  /**
   * Rejects when the log's layout breaks a promise (a Kafka topic whose partition count is not
   * KAFKA_PARTITIONS); the api and the sink refuse to start then.
   */
  verify(): Promise<void>;
  publish(messages: readonly LogMessage[]): Promise<void>;
  subscribe(options: SubscribeOptions, handle: BatchHandler): Promise<Subscription>;
  /** Messages the group has not acknowledged yet (undelivered plus in flight). */
  lag(group: string): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

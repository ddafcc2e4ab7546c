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

export type BatchHandler = (records: LogRecord[]) => Promise<void>;

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
  publish(messages: readonly LogMessage[]): Promise<void>;
  subscribe(options: SubscribeOptions, handle: BatchHandler): Promise<Subscription>;
  /** Messages the group has not acknowledged yet (undelivered plus in flight). */
  lag(group: string): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

import { z } from 'zod';
import { parseEncryptionKey } from './stripe/secrets.ts';

// Environment variables arrive as strings; these helpers read them with defaults beside each field.
const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const csv = z
  .string()
  .transform((s) => s.split(',').map((part) => part.trim()))
  .pipe(z.array(z.string().min(1)).min(1));

export const Config = z
  .object({
    http: z.object({
      port: z.coerce.number().int().min(0).max(65535).default(8080),
      host: z.string().default('0.0.0.0'),
    }),
    ingest: z.object({
      maxBodyBytes: int(5 * 1024 * 1024),
      maxBatchEvents: int(5000),
      // Producers' clocks drift; beyond this an event's time is a bug, not drift.
      maxFutureSkewSeconds: int(300),
      // One event, encoded: room for a 1 MB prompt (up to 2 MB once JSON escapes it) plus metadata.
      maxEventBytes: int(2 * 1024 * 1024),
      maxDataDepth: int(32),
      // One stored value per leaf: far above real payloads, far below a row the sink cannot build.
      maxDataLeaves: int(10_000),
    }),
    eventLog: z.discriminatedUnion('kind', [
      z.object({
        kind: z.literal('redis'),
        stream: z.string().min(1).default('meterline:events'),
        // Producers get 503 rather than the log trimming entries the sink has not acknowledged.
        maxLength: int(1_000_000),
      }),
      z.object({
        kind: z.literal('kafka'),
        brokers: csv,
        topic: z.string().min(1).default('meterline-events'),
        clientId: z.string().default('meterline'),
        partitions: int(6),
      }),
    ]),
    clickhouse: z.object({
      url: z.url().default('http://127.0.0.1:8123'),
      database: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _ only')
        .default('meterline'),
      username: z.string().default('default'),
      password: z.string().default(''),
    }),
    postgres: z.object({ url: z.string().default('postgres://postgres@127.0.0.1:5432/meterline') }),
    redis: z.object({ url: z.string().default('redis://127.0.0.1:6379') }),
    sink: z.object({
      batchSize: int(5000),
      batchWaitMs: int(200),
      consumerGroup: z.string().min(1).default('meterline-sink'),
      // Stable per process so a restarted sink re-reads what it had not acknowledged.
      consumerName: z.string().min(1).default('sink-1'),
      // Entries a dead consumer held this long are taken over by a live one.
      claimIdleMs: int(30_000),
      // Bounded INSERTs: a batch of large events goes in as several, never as one huge body.
      insertMaxBytes: int(16 * 1024 * 1024),
      // A failure that is neither bad data nor an outage is tried this often before the batch is split.
      splitAfterFailures: int(3),
    }),
    ready: z.object({
      maxSinkLag: int(100_000),
      // Events waiting and no batch stored for this long: the sink is stalled.
      maxSinkStallSeconds: int(60),
    }),
    meters: z.object({
      /** YAML or JSON file of meters per namespace, created or updated at start (never deleted). */
      file: z.string().min(1).optional(),
      maxWindows: int(50_000),
    }),
    stripe: z.object({
      apiBase: z.url().default('https://api.stripe.com'),
      /** 32 bytes (64 hex characters or base64) for AES-256-GCM of Stripe keys at rest; required to connect. */
      encryptionKey: z
        .string()
        .refine((text) => parseEncryptionKey(text) !== null, '32 bytes as 64 hex characters or base64')
        .optional(),
      /** Where Stripe can reach this api, for the webhook endpoint Meterline creates. */
      publicUrl: z.url().optional(),
      /** Customer metadata key holding the subject a Stripe customer's usage is recorded under. */
      subjectMetadataKey: z.string().min(1).default('meterline_subject'),
      reconcileEveryMinutes: int(15),
    }),
    log: z.object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    }),
  })
  .superRefine((config, ctx) => {
    // A larger event limit would promise events that no request body can carry.
    if (config.ingest.maxEventBytes > config.ingest.maxBodyBytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['ingest', 'maxEventBytes'],
        message: `must not exceed INGEST_MAX_BODY_BYTES (${config.ingest.maxBodyBytes})`,
      });
    }
    // The Redis Streams lease (claimIdleMs) is renewed between reads; gathering one batch takes up to
    // two waits, which must leave most of the lease.
    if (config.sink.batchWaitMs * 4 > config.sink.claimIdleMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['sink', 'batchWaitMs'],
        message: `must be at most a quarter of SINK_CLAIM_IDLE_MS (${config.sink.claimIdleMs}), or the sink lease could lapse while a batch is gathered`,
      });
    }
    // A request is published whole or not at all: one larger than the stream bound would get 503 forever.
    if (config.eventLog.kind === 'redis' && config.ingest.maxBatchEvents > config.eventLog.maxLength) {
      ctx.addIssue({
        code: 'custom',
        path: ['eventLog', 'maxLength'],
        message: `must be at least INGEST_MAX_BATCH_EVENTS (${config.ingest.maxBatchEvents}), or such a request could never be accepted`,
      });
    }
  });
export type Config = z.infer<typeof Config>;

/** Which variable feeds which field: the one place that names environment variables. */
const ENV: Record<string, string> = {
  PORT: 'http.port',
  HOST: 'http.host',
  INGEST_MAX_BODY_BYTES: 'ingest.maxBodyBytes',
  INGEST_MAX_BATCH_EVENTS: 'ingest.maxBatchEvents',
  INGEST_MAX_FUTURE_SKEW_SECONDS: 'ingest.maxFutureSkewSeconds',
  INGEST_MAX_EVENT_BYTES: 'ingest.maxEventBytes',
  INGEST_MAX_DATA_DEPTH: 'ingest.maxDataDepth',
  INGEST_MAX_DATA_LEAVES: 'ingest.maxDataLeaves',
  EVENT_LOG: 'eventLog.kind',
  REDIS_STREAM: 'eventLog.stream',
  REDIS_STREAM_MAX_LENGTH: 'eventLog.maxLength',
  KAFKA_BROKERS: 'eventLog.brokers',
  KAFKA_TOPIC: 'eventLog.topic',
  KAFKA_CLIENT_ID: 'eventLog.clientId',
  KAFKA_PARTITIONS: 'eventLog.partitions',
  CLICKHOUSE_URL: 'clickhouse.url',
  CLICKHOUSE_DATABASE: 'clickhouse.database',
  CLICKHOUSE_USER: 'clickhouse.username',
  CLICKHOUSE_PASSWORD: 'clickhouse.password',
  DATABASE_URL: 'postgres.url',
  REDIS_URL: 'redis.url',
  SINK_BATCH_SIZE: 'sink.batchSize',
  SINK_BATCH_WAIT_MS: 'sink.batchWaitMs',
  SINK_CONSUMER_GROUP: 'sink.consumerGroup',
  SINK_CONSUMER_NAME: 'sink.consumerName',
  SINK_CLAIM_IDLE_MS: 'sink.claimIdleMs',
  SINK_INSERT_MAX_BYTES: 'sink.insertMaxBytes',
  SINK_SPLIT_AFTER_FAILURES: 'sink.splitAfterFailures',
  READY_MAX_SINK_LAG: 'ready.maxSinkLag',
  READY_MAX_SINK_STALL_SECONDS: 'ready.maxSinkStallSeconds',
  METERS_FILE: 'meters.file',
  QUERY_MAX_WINDOWS: 'meters.maxWindows',
  STRIPE_API_BASE: 'stripe.apiBase',
  STRIPE_ENCRYPTION_KEY: 'stripe.encryptionKey',
  PUBLIC_URL: 'stripe.publicUrl',
  STRIPE_SUBJECT_METADATA_KEY: 'stripe.subjectMetadataKey',
  STRIPE_RECONCILE_EVERY_MINUTES: 'stripe.reconcileEveryMinutes',
  LOG_LEVEL: 'log.level',
};
export const CONFIG_ENV_VARS = Object.keys(ENV);

export class ConfigError extends Error {}

/** Parses the environment once; a bad value stops start-up naming its variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const raw: Record<string, Record<string, unknown>> = {
    http: {},
    ingest: {},
    eventLog: { kind: 'redis' },
    clickhouse: {},
    postgres: {},
    redis: {},
    sink: {},
    ready: {},
    meters: {},
    stripe: {},
    log: {},
  };
  for (const [name, path] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const [area, field] = path.split('.') as [string, string];
    raw[area] = { ...raw[area], [field]: value };
  }
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    const byPath = Object.fromEntries(Object.entries(ENV).map(([name, path]) => [path, name]));
    const lines = parsed.error.issues.map((issue) => {
      const path = issue.path.join('.');
      return `${byPath[path] ?? path}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return Object.freeze(parsed.data);
}

import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { type ClickHouse, createClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { identifier, sql } from '../../src/clickhouse/sql.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { createDb, type Db } from '../../src/db/client.ts';
import { ensureDatabase, migratePostgres } from '../../src/db/migrations.ts';
import type { EventLog } from '../../src/eventlog/event-log.ts';
import { createEventLog } from '../../src/eventlog/index.ts';
import { createEventStore, type EventStore } from '../../src/events/store.ts';
import { buildApp } from '../../src/http/app.ts';
import { createIngestService } from '../../src/ingest/service.ts';
import { createKeyService, type KeyService } from '../../src/keys/service.ts';
import { createMeterService } from '../../src/meters/service.ts';
import { createMetrics, type Metrics } from '../../src/ops/metrics.ts';
import type { ReadinessCheck } from '../../src/ops/routes.ts';
import { createSink } from '../../src/sink/service.ts';
import { createStripeService, type StripeOptions } from '../../src/stripe/service.ts';
import { createSubjectStore } from '../../src/subjects/store.ts';

export type TestEnv = {
  id: string;
  config: Readonly<Config>;
  /** Environment variables that point a child `meterline` process at this test's databases. */
  processEnv: NodeJS.ProcessEnv;
  ch: ClickHouse;
  db: Db;
  redis: Redis;
  log: EventLog;
  store: EventStore;
  metrics: Metrics;
  keys: KeyService;
  cleanup(): Promise<void>;
};

const silent = pino({ level: 'silent' });

/**
 * Real ClickHouse, PostgreSQL and Redis, isolated per test file: a fresh database in each store
 * and a fresh stream name, dropped at the end.
 */
export async function createTestEnv(overrides: NodeJS.ProcessEnv = {}): Promise<TestEnv> {
  const id = `mlt_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const processEnv: NodeJS.ProcessEnv = {
    ...process.env,
    CLICKHOUSE_DATABASE: id,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${id}`,
    REDIS_STREAM: `${id}:events`,
    SINK_CONSUMER_GROUP: `${id}-sink`,
    SINK_BATCH_WAIT_MS: '20',
    LOG_LEVEL: 'silent',
    // Every role serves /healthz and /metrics; child processes take any free port.
    PORT: '0',
    ...overrides,
  };
  const config = loadConfig(processEnv);
  const ch = createClickHouse(config.clickhouse);
  await migrateClickHouse(ch);
  await ensureDatabase(config.postgres.url);
  const db = createDb(config.postgres.url);
  await migratePostgres(db);
  const redis = new Redis(config.redis.url);
  const log = createEventLog(config, silent);
  return {
    id,
    config,
    processEnv,
    ch,
    db,
    redis,
    log,
    store: createEventStore(ch),
    metrics: createMetrics(),
    keys: createKeyService(db, { cacheTtlMs: 0 }),
    async cleanup() {
      await log.close();
      if (config.eventLog.kind === 'redis') await redis.del(config.eventLog.stream);
      redis.disconnect();
      await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(id)}`);
      await ch.close();
      await db.end();
      const admin = createDb('postgres://postgres@127.0.0.1:5432/postgres');
      await admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
      await admin.end();
    },
  };
}

export type TestAppOptions = {
  logger?: Logger;
  ingest?: Partial<Config['ingest']>;
  checks?: ReadinessCheck[];
  stripe?: Partial<StripeOptions>;
};

/** A test encryption key for Stripe secrets (tests only). */
export const TEST_ENCRYPTION_KEY = 'ab'.repeat(32);

export async function buildTestApp(env: TestEnv, options: TestAppOptions = {}) {
  const ingestConfig = { ...env.config.ingest, ...options.ingest };
  const meters = createMeterService({ db: env.db, ch: env.ch }, { maxWindows: env.config.meters.maxWindows });
  const subjects = createSubjectStore(env.db);
  const logger = options.logger ?? silent;
  return buildApp({
    logger,
    metrics: env.metrics,
    keys: env.keys,
    ingest: createIngestService({ log: env.log, metrics: env.metrics }, ingestConfig),
    events: env.store,
    meters,
    subjects,
    stripe: createStripeService(
      { db: env.db, meters, subjects, logger },
      { ...env.config.stripe, encryptionKey: TEST_ENCRYPTION_KEY, ...options.stripe },
    ),
    maxBodyBytes: ingestConfig.maxBodyBytes,
    checks: options.checks ?? [{ name: 'clickhouse', check: () => env.ch.ping() }],
  });
}

export function createTestSink(env: TestEnv, consumer = 'test-sink', batchSize = 500) {
  return createSink(
    { log: env.log, store: env.store, metrics: env.metrics, logger: silent },
    {
      group: env.config.sink.consumerGroup,
      consumer,
      batchSize,
      batchWaitMs: 20,
      insertMaxBytes: env.config.sink.insertMaxBytes,
      splitAfterFailures: env.config.sink.splitAfterFailures,
    },
  );
}

/** Polls until `probe` returns true; fails with `what` after `timeoutMs`. */
export async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A CloudEvent as a client would send it. */
export function cloudEvent(overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id: randomBytes(8).toString('hex'),
    source: 'test',
    type: 'api-calls',
    subject: 'customer-1',
    time: new Date().toISOString(),
    data: { tokens: 10 },
    ...overrides,
  };
}

/**
 * The usual test-file setup: a fresh TestEnv, an app built on it and an API key for namespace
 * `acme`, torn down after the file. Read the fields inside tests (they are set in beforeAll).
 */
export function useTestApp(options: TestAppOptions = {}) {
  const ctx = {} as { env: TestEnv; app: FastifyInstance; key: string };
  beforeAll(async () => {
    ctx.env = await createTestEnv();
    ctx.app = await buildTestApp(ctx.env, options);
    ctx.key = (await ctx.env.keys.create('acme')).key;
  });
  afterAll(async () => {
    await ctx.app.close();
    await ctx.env.cleanup();
  });
  return ctx;
}

/** POST /api/v1/events through `inject`, as a client would send it. */
export function postEvents(
  app: FastifyInstance,
  key: string,
  body: unknown,
  contentType = 'application/cloudevents-batch+json',
) {
  return app.inject({
    method: 'POST',
    url: '/api/v1/events',
    headers: { 'content-type': contentType, authorization: `Bearer ${key}` },
    payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}

/** Runs a sink until the event log is empty: what a test does between posting and reading usage. */
export async function drain(env: TestEnv) {
  const sink = createTestSink(env);
  await sink.start();
  await eventually(async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0, 'sink to drain');
  await sink.stop();
}

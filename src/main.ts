import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bullConnection } from '../jobs/connection.ts';
import { createJobs } from '../jobs/queues.ts';
import { stripeReconcileProcessor } from '../jobs/stripe-reconcile.ts';
import { startWorker } from '../jobs/worker.ts';
import { createClickHouse } from './clickhouse/client.ts';
import { migrateClickHouse } from './clickhouse/migrations.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { createDb } from './db/client.ts';
import { ensureDatabase, migratePostgres } from './db/migrations.ts';
import { createEventLog } from './eventlog/index.ts';
import { createEventStore } from './events/store.ts';
import { buildApp, buildOpsApp, closeGracefully } from './http/app.ts';
import { createIngestService } from './ingest/service.ts';
import { describeDbError, runKeysCommand } from './keys/cli.ts';
import { createKeyService } from './keys/service.ts';
import { createLogger } from './lib/logger.ts';
import { applyMetersFile } from './meters/config-file.ts';
import { createMeterService } from './meters/service.ts';
import { createMetrics } from './ops/metrics.ts';
import { sinkLagCheck, sinkStallCheck } from './ops/routes.ts';
import { createSinkProgress } from './sink/progress.ts';
import { createSink } from './sink/service.ts';
import { createStripeService } from './stripe/service.ts';
import { createSubjectStore } from './subjects/store.ts';

const USAGE = `usage: meterline <command>
  api | sink | worker | all   run one role, or every role in one process
  migrate                     create or upgrade the ClickHouse and PostgreSQL schemas
  keys create --namespace N [--description D]   print a new API key (shown once)
  keys list --namespace N     id, prefix, description, created and revoked time of each key
  keys revoke <id>            revoke a key (or --id ID); every api process refuses it within 1 s`;

type Role = 'api' | 'sink' | 'worker';

/** Composition root: the only place that reads configuration and builds clients. */
async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  const logger = createLogger(config.log.level);

  if (command === 'migrate') return migrate(config, logger);
  if (command === 'keys') return keys(config, rest);
  const roles: Role[] | undefined =
    command === 'all'
      ? ['api', 'sink', 'worker']
      : command === 'api' || command === 'sink' || command === 'worker'
        ? [command]
        : undefined;
  if (!roles) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  await serve(config, logger, roles);
}

async function migrate(config: Config, logger: Logger) {
  const ch = createClickHouse(config.clickhouse);
  await ensureDatabase(config.postgres.url);
  const db = createDb(config.postgres.url);
  const log = createEventLog(config, logger);
  try {
    const clickhouse = await migrateClickHouse(ch);
    const postgres = await migratePostgres(db);
    await log.setup();
    logger.info({ clickhouse, postgres }, 'migrations applied');
  } finally {
    await Promise.all([ch.close(), db.end(), log.close()]);
  }
}

async function keys(config: Config, args: string[]) {
  const db = createDb(config.postgres.url);
  try {
    process.exitCode = await runKeysCommand(
      db,
      args,
      { stdout: (line) => console.log(line), stderr: (line) => console.error(line) },
      USAGE,
    );
  } catch (err) {
    // One line an operator can act on (run migrate, check DATABASE_URL), not a stack trace.
    console.error(
      describeDbError(err, config.postgres.url) ?? `meterline keys: ${(err as Error).message ?? err}`,
    );
    process.exitCode = 1;
  } finally {
    await db.end();
  }
}

/** Events the api acknowledged live in the Redis stream until stored: say so when Redis keeps no file. */
async function warnIfNotPersistent(redis: Redis, logger: Logger) {
  // CONFIG may be disabled (managed Redis); then there is nothing to check.
  const reply = (await redis.config('GET', 'appendonly').catch(() => null)) as string[] | null;
  if (reply?.[1] === 'no') {
    logger.warn(
      'Redis has appendonly off: events accepted but not yet stored in ClickHouse are lost if Redis restarts; enable appendonly for the Redis Streams event log',
    );
  }
}

/** Listens on HOST:PORT; a port taken or refused is a configuration problem, told in one line. */
async function listen(app: FastifyInstance, http: Config['http']) {
  try {
    await app.listen({ port: http.port, host: http.host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new ConfigError(
        `port ${http.port} is already in use on ${http.host} (PORT); stop what holds it or choose another PORT`,
      );
    }
    if (code === 'EACCES') {
      throw new ConfigError(`port ${http.port} needs privileges this process lacks (PORT)`);
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new ConfigError(`${http.host} is not an address of this machine (HOST)`);
    }
    throw err;
  }
}

/** Beyond this, shutdown gives up on a hung step and exits (Kubernetes waits 30 s by default). */
const SHUTDOWN_DEADLINE_MS = 25_000;

async function serve(config: Config, logger: Logger, roles: Role[]) {
  const metrics = createMetrics({ defaults: true });
  const ch = createClickHouse(config.clickhouse);
  const db = createDb(config.postgres.url, logger);
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3, lazyConnect: true });
  // Only the readiness check uses it; ioredis reconnects by itself and reports each failure here.
  redis.on('error', (err) => logger.warn({ err }, 'redis connection error; reconnecting'));
  if (config.eventLog.kind === 'redis') await warnIfNotPersistent(redis, logger);
  const log = createEventLog(config, logger);
  // A Kafka topic whose partition count changed would route copies of one event apart.
  await log.verify();
  const store = createEventStore(ch);
  const progress = createSinkProgress(redis, config.sink.consumerGroup);
  const stops: (() => Promise<void>)[] = [];

  const meters = createMeterService({ db, ch }, { maxWindows: config.meters.maxWindows });
  const subjects = createSubjectStore(db);
  const stripe = createStripeService(
    { db, meters, subjects, logger: logger.child({ area: 'stripe' }) },
    config.stripe,
  );

  // Every role serves /healthz, /readyz and /metrics on PORT; the api role adds the API.
  const lag = () => log.lag(config.sink.consumerGroup);
  const ops = {
    logger: logger.child({ role: roles.join('+') }),
    metrics,
    beforeScrape: async () => metrics.sinkLag.set(await lag()),
    checks: [
      { name: 'clickhouse', check: () => ch.ping() },
      { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
      { name: 'redis', check: async () => void (await redis.ping()) },
      { name: 'eventLog', check: () => log.ping() },
      sinkLagCheck(lag, config.ready.maxSinkLag),
      sinkStallCheck(lag, progress.last, config.ready.maxSinkStallSeconds * 1000),
    ],
  };
  if (roles.includes('api') && config.meters.file) await applyMetersFile(config.meters.file, meters, logger);
  const app = roles.includes('api')
    ? await buildApp({
        ...ops,
        keys: createKeyService(db),
        ingest: createIngestService({ log, metrics }, config.ingest),
        events: store,
        meters,
        subjects,
        stripe,
        maxBodyBytes: config.ingest.maxBodyBytes,
      })
    : await buildOpsApp(ops);
  // Listen before any role starts: a port in use then stops start-up before a sink joins its group
  // or a worker schedules jobs, with one line instead of a half-started process.
  await listen(app, config.http);
  // Stop accepting first, so the sink can drain what the api already acknowledged.
  stops.push(async () => {
    await closeGracefully(app);
    logger.info('http server closed');
  });

  if (roles.includes('sink')) {
    const sink = createSink(
      { log, store, metrics, progress, logger: logger.child({ role: 'sink' }) },
      {
        group: config.sink.consumerGroup,
        consumer: config.sink.consumerName,
        batchSize: config.sink.batchSize,
        batchWaitMs: config.sink.batchWaitMs,
        insertMaxBytes: config.sink.insertMaxBytes,
        splitAfterFailures: config.sink.splitAfterFailures,
      },
    );
    const subscription = await sink.start();
    subscription.done.catch((err) => {
      logger.fatal({ err }, 'sink stopped on an error');
      process.exit(1);
    });
    stops.push(async () => {
      await sink.stop();
      logger.info('sink drained its last batch');
    });
    logger.info({ transport: log.kind }, 'sink started');
  }

  if (roles.includes('worker')) {
    const connection = bullConnection(config.redis.url);
    const workerLogger = logger.child({ role: 'worker' });
    const jobs = createJobs(connection, workerLogger);
    await jobs.scheduleReconcile(config.stripe.reconcileEveryMinutes);
    const worker = startWorker(
      connection,
      { 'stripe.reconcile': stripeReconcileProcessor(stripe) },
      workerLogger,
    );
    stops.push(async () => {
      await worker.close();
      await jobs.close();
    });
    logger.info(
      { everyMinutes: config.stripe.reconcileEveryMinutes },
      'worker started; Stripe reconcile scheduled',
    );
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // A stop that hangs must not keep the process from ending (the orchestrator would SIGKILL it).
    setTimeout(() => {
      logger.error({ afterMs: SHUTDOWN_DEADLINE_MS }, 'shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    for (const stop of stops) {
      // One failing stop (a worker, a Kafka disconnect) must not skip the ones after it.
      await stop().catch((err: unknown) => logger.error({ err }, 'a shutdown step failed'));
    }
    await Promise.allSettled([log.close(), ch.close(), db.end(), redis.quit()]);
    logger.info('stopped');
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

run(process.argv.slice(2)).catch((err) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});

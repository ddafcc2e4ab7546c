/**
 * Usage-query benchmark: BENCH_EVENTS events (10 million) of BENCH_SUBJECTS subjects (10,000) over
 * three months, loaded straight into a fresh ClickHouse database as the sink writes them (toEventRow,
 * a redelivered copy of every BENCH_DUPLICATE_EVERY-th event, so FINAL has work to do). Then, with
 * `meterline api` as a child process and a SUM meter with one group-by created through the API, for
 * February: one subject by DAY, one subject by HOUR, and all subjects grouped by model, each timed
 * three ways, interleaved on the same subjects:
 *   api     GET /api/v1/meters/:meter/query over keep-alive HTTP, as a client sees it;
 *   apiSql  the SQL the API builds (buildUsageQuery), run directly: the API minus HTTP and service;
 *   sql     the best hand-written SQL for the same answer: the ceiling.
 * Every answer of the three is checked to be identical. Prints one JSON line to stdout and appends
 * it to bench/results/query.jsonl; progress goes to stderr.
 *
 * Env: BENCH_EVENTS (10000000), BENCH_SUBJECTS (10000), BENCH_REPS (50, one-subject queries),
 * BENCH_REPS_ALL (20, all-subjects query: seconds a round), BENCH_LOAD_BATCH (100000 rows per INSERT),
 * BENCH_LOAD_CONCURRENCY (2 INSERTs in flight), BENCH_DUPLICATE_EVERY (1000),
 * BENCH_MERGE_WAIT_SECONDS (600: after loading, wait this long at most for background merges),
 * BENCH_CHILD_NODE_OPTIONS (NODE_OPTIONS for the api child only; see bench/cpu-profile.mjs).
 * BENCH_KEEP_DB=1 keeps the ClickHouse database (its name is printed). BENCH_REUSE_DB=<name> uses
 * that database: loaded on the first run, reused as it is on later ones, never dropped, e.g.
 *   BENCH_REUSE_DB=mlq_10m npm run bench:query
 */
import { randomUUID } from 'node:crypto';
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse } from '../src/clickhouse/client.ts';
import { identifier, type Sql, sql } from '../src/clickhouse/sql.ts';
import type { LogEvent } from '../src/events/event.ts';
import { toEventRow } from '../src/events/store.ts';
import type { Meter } from '../src/meters/meter.ts';
import { buildUsageQuery, type UsageQuery, type UsageRow } from '../src/meters/query.ts';
import { createMeterService, type UsageResult } from '../src/meters/service.ts';
import { createTestEnv, type TestEnv } from '../test/support/env.ts';
import { type MeterlineProcess, startMeterline } from '../test/support/process.ts';
import {
  EVENT_TYPE,
  envInt,
  freePort,
  get,
  gitState,
  MODELS,
  note,
  now,
  type PostResult,
  percentile,
  post,
  round,
  stopProcess,
  tail,
  waitUntil,
  writeResult,
} from './lib.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const EVENTS = envInt('BENCH_EVENTS', 10_000_000);
const SUBJECTS = envInt('BENCH_SUBJECTS', 10_000);
const REPS = envInt('BENCH_REPS', 50);
const REPS_ALL = envInt('BENCH_REPS_ALL', 20);
const LOAD_BATCH = envInt('BENCH_LOAD_BATCH', 100_000);
const LOAD_CONCURRENCY = envInt('BENCH_LOAD_CONCURRENCY', 2);
const DUPLICATE_EVERY = envInt('BENCH_DUPLICATE_EVERY', 1000);
const MERGE_WAIT_SECONDS = envInt('BENCH_MERGE_WAIT_SECONDS', 600);
const REUSE_DB = process.env.BENCH_REUSE_DB || '';
const KEEP_DB = process.env.BENCH_KEEP_DB === '1' || REUSE_DB !== '';
const WARMUP = 3;

const NAMESPACE = 'bench-query';
const SOURCE = 'llm-gateway';
// Three months of events; the queries ask for the middle one (a leap February: 29 days, 696 hours).
const DATA_FROM = Date.UTC(2024, 0, 1);
const DATA_TO = Date.UTC(2024, 3, 1);
const MONTH_FROM = Date.UTC(2024, 1, 1);
const MONTH_TO = Date.UTC(2024, 2, 1);
const METER = {
  slug: 'input_tokens',
  name: 'Input tokens',
  aggregation: 'SUM',
  eventType: EVENT_TYPE,
  valueProperty: '$.usage.input_tokens',
  groupBy: { model: '$.model' },
} as const;
const VALUE_PATH = '$.usage.input_tokens';
const MODEL_PATH = '$.model';
const TARGETS = { oneSubjectP50Ms: 50, ratio: 1.5 };

const subjectName = (n: number) => `customer-${String(n).padStart(5, '0')}`;

type Load = { events: number; copies: number; subjects: number; loadSeconds: number; reused: boolean };

/** One LLM call's token usage, as the sink receives it from the log. */
function tokenUsage(time: number): LogEvent {
  const input = 50 + Math.floor(Math.random() * 4000);
  return {
    namespace: NAMESPACE,
    id: randomUUID(),
    source: SOURCE,
    type: EVENT_TYPE,
    subject: subjectName(Math.floor(Math.random() * SUBJECTS)),
    time,
    datacontenttype: null,
    dataschema: null,
    data: {
      model: MODELS[Math.floor(Math.random() * MODELS.length)] as string,
      usage: { input_tokens: input, output_tokens: Math.floor(input * (0.05 + Math.random() * 0.5)) },
    },
    ingestedAt: time + 150,
  };
}

/**
 * Loads EVENTS events in time order (as they would arrive), LOAD_BATCH rows per INSERT with a few
 * INSERTs in flight while the next batch is built, so memory stays bounded. A copy of every
 * DUPLICATE_EVERY-th event goes again in the next batch, as a redelivery would.
 */
async function load(ch: ClickHouse): Promise<Omit<Load, 'reused'>> {
  const span = DATA_TO - DATA_FROM;
  const inflight = new Set<Promise<void>>();
  const launch = (lines: string[]) => {
    const p: Promise<void> = insertWithRetry(ch, lines).finally(() => inflight.delete(p));
    p.catch(() => undefined); // awaited below; this only keeps a later failure from going unhandled
    inflight.add(p);
  };
  let carry: string[] = [];
  let copies = 0;
  let buildMs = 0;
  let reported = 0;
  const start = now();
  for (let first = 0; first < EVENTS; first += LOAD_BATCH) {
    const built = now();
    const lines = carry;
    carry = [];
    for (let i = first; i < Math.min(EVENTS, first + LOAD_BATCH); i++) {
      // Lets the INSERTs in flight see their answers promptly: a pooled socket whose answer waited
      // behind a long synchronous build may already be closed by the server when it is reused.
      if (i % 5000 === 0) await new Promise((resolve) => setImmediate(resolve));
      const time = DATA_FROM + Math.floor(((i + Math.random()) * span) / EVENTS);
      const line = toEventRow(tokenUsage(time), time + 500);
      lines.push(line);
      if (i % DUPLICATE_EVERY === DUPLICATE_EVERY - 1) carry.push(line);
    }
    copies += carry.length;
    buildMs += now() - built;
    while (inflight.size >= LOAD_CONCURRENCY) await Promise.race(inflight);
    launch(lines);
    const done = first + LOAD_BATCH;
    if (done >= reported + EVENTS / 10 || done >= EVENTS) {
      reported = done;
      const seconds = (now() - start) / 1000;
      note(
        `  built ${Math.min(done, EVENTS)} events in ${round(seconds)} s (${Math.round(done / seconds)}/s)`,
      );
    }
  }
  if (carry.length > 0) launch(carry);
  await Promise.all(inflight);
  const loadSeconds = round((now() - start) / 1000);
  note(
    `loaded ${EVENTS} events (+${copies} copies) in ${loadSeconds} s; building rows took ${round(buildMs / 1000)} s`,
  );
  return { events: EVENTS, copies, subjects: SUBJECTS, loadSeconds };
}

/**
 * An INSERT, resent once if the connection broke (a keep-alive socket the server had closed). Sending
 * rows twice is harmless here: a copy has the same sort key, and FINAL (and merges) collapse it.
 */
async function insertWithRetry(ch: ClickHouse, lines: string[]) {
  try {
    await ch.insertLines('events', lines);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'EPIPE' && code !== 'ECONNRESET') throw err;
    note(`  INSERT failed with ${code}; sending it again`);
    await ch.insertLines('events', lines);
  }
}

/** Waits until ClickHouse has no merge running on the database (a settled table, as after a quiet night). */
async function settle(ch: ClickHouse) {
  const start = now();
  let quiet = 0;
  while (quiet < 3 && now() - start < MERGE_WAIT_SECONDS * 1000) {
    const [row] = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.merges WHERE database = ${ch.database}`,
    );
    quiet = Number(row?.n) === 0 ? quiet + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  note(`merges ${quiet >= 3 ? 'settled' : 'still running'} after ${round((now() - start) / 1000)} s`);
}

async function parts(ch: ClickHouse) {
  const rows = await ch.query<{ partition: string; parts: string; rows: string; bytes: string }>(
    sql`SELECT partition, count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
        WHERE database = ${ch.database} AND table = 'events' AND active GROUP BY partition ORDER BY partition`,
  );
  return Object.fromEntries(
    rows.map((r) => [
      r.partition,
      { parts: Number(r.parts), rows: Number(r.rows), mb: round(Number(r.bytes) / 2 ** 20) },
    ]),
  );
}

/** The queried month's rows as stored, and as FINAL reads them: the copies FINAL still has to collapse. */
async function monthRows(ch: ClickHouse) {
  const db = identifier(ch.database);
  const where = sql`namespace = ${NAMESPACE} AND type = ${EVENT_TYPE} AND ${MONTH}`;
  const [stored] = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM ${db}.events WHERE ${where}`);
  const [distinct] = await ch.query<{ n: string }>(
    sql`SELECT count() AS n FROM ${db}.events FINAL WHERE ${where}`,
  );
  return { stored: Number(stored?.n), distinct: Number(distinct?.n) };
}

/** The load of a reused database, or of this run (recorded in the database for the next run). */
async function ensureLoaded(ch: ClickHouse): Promise<Load> {
  const db = identifier(ch.database);
  await ch.command(
    sql`CREATE TABLE IF NOT EXISTS ${db}.bench_load
        (events UInt64, copies UInt64, subjects UInt32, load_seconds Float64) ENGINE = TinyLog`,
  );
  const [previous] = await ch.query<{
    events: string;
    copies: string;
    subjects: string;
    load_seconds: number;
  }>(sql`SELECT events, copies, subjects, load_seconds FROM ${db}.bench_load`);
  if (previous) {
    note(`reusing ${ch.database}: ${previous.events} events of ${previous.subjects} subjects`);
    if (process.env.BENCH_EVENTS && Number(previous.events) !== EVENTS) {
      note(`  (BENCH_EVENTS=${EVENTS} ignored: the database holds ${previous.events})`);
    }
    return {
      events: Number(previous.events),
      copies: Number(previous.copies),
      subjects: Number(previous.subjects),
      loadSeconds: Number(previous.load_seconds),
      reused: true,
    };
  }
  const [existing] = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM ${db}.events`);
  if (Number(existing?.n) > 0) {
    throw new Error(`${ch.database} holds events but no record of a finished load; drop it and run again`);
  }
  note(`loading ${EVENTS} events of ${SUBJECTS} subjects into ${ch.database}`);
  const loaded = await load(ch);
  await settle(ch);
  const [stored] = await ch.query<{ n: string }>(
    sql`SELECT count() AS n FROM ${db}.events FINAL WHERE namespace = ${NAMESPACE}`,
  );
  if (Number(stored?.n) !== loaded.events) throw new Error(`stored ${stored?.n} of ${loaded.events} events`);
  await ch.insert('bench_load', [
    {
      events: loaded.events,
      copies: loaded.copies,
      subjects: loaded.subjects,
      load_seconds: loaded.loadSeconds,
    },
  ]);
  return { ...loaded, reused: false };
}

// ---------------------------------------------------------------------------------------------
// The queries

const isoMonthFrom = new Date(MONTH_FROM).toISOString();
const isoMonthTo = new Date(MONTH_TO).toISOString();
const chDateTime = (ms: number) =>
  sql`toDateTime(${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}, 'UTC')`;

type Answer = string[]; // sorted "key=value" lines, comparable across the three ways

type QueryKind = {
  name: string;
  reps: number;
  perSubject: boolean;
  params: (subject: string) => Record<string, string>;
  usage: (subject: string) => UsageQuery;
  handSql: (db: Sql, subject: string) => Sql;
  /** The key of a row of the API's answer, of the API's SQL, and of the hand-written SQL. */
  apiKey: (row: UsageResult['data'][number]) => string;
  usageKey: (row: UsageRow) => string;
  handKey: (row: Record<string, string | number>) => string;
};

const windowKey = (seconds: number | string) => new Date(Number(seconds) * 1000).toISOString();

/**
 * The hand-written ceiling, as an expert would write it for this meter: read through FINAL (exact
 * de-duplication); for one subject, put the subject condition in PREWHERE, so the other columns are read
 * only for that subject's rows of the granules the key selects (exact under FINAL: every copy of an
 * event has the same sort key, so a condition on a key column keeps or drops all copies alike; 18.16
 * moves nothing to PREWHERE by itself under FINAL, and moving the other key conditions too reads more);
 * bound by the seconds column alone (the month's bounds are whole seconds, and `time < end` keeps the
 * next month's partition out); and sum the decimals at the value's path directly (a missing or
 * non-numeric value stores decimal 0, so the sum is exact without a kind filter), left to the JSON
 * output as the API's SQL does.
 */
const MONTH = sql`time >= ${chDateTime(MONTH_FROM)} AND time < ${chDateTime(MONTH_TO)}`;
const VALUE = sql`data_decimals[indexOf(data_paths, ${VALUE_PATH})]`;

function windowSql(size: 'DAY' | 'HOUR') {
  const bucket = size === 'DAY' ? sql`toStartOfDay(time, 'UTC')` : sql`toStartOfHour(time, 'UTC')`;
  return (db: Sql, subject: string) =>
    sql`SELECT toUnixTimestamp(${bucket}) AS w, sum(${VALUE}) AS v
        FROM ${db}.events FINAL PREWHERE subject = ${subject}
        WHERE namespace = ${NAMESPACE} AND type = ${EVENT_TYPE} AND ${MONTH}
        GROUP BY w ORDER BY w`;
}

const KINDS: QueryKind[] = (['DAY', 'HOUR'] as const)
  .map(
    (size): QueryKind => ({
      name: `oneSubject${size === 'DAY' ? 'Day' : 'Hour'}`,
      reps: REPS,
      perSubject: true,
      params: (subject) => ({ from: isoMonthFrom, to: isoMonthTo, windowSize: size, subject }),
      usage: (subject) => ({
        from: MONTH_FROM,
        to: MONTH_TO,
        windowSize: size,
        timeZone: 'UTC',
        subjects: [subject],
        groupBy: ['subject'], // as the service asks: a subject filter also groups by subject
        filterGroupBy: {},
      }),
      handSql: windowSql(size),
      apiKey: (row) => `${row.windowStart}=${row.value}`,
      usageKey: (row) => `${windowKey(row.window_start ?? '')}=${Number(row.value)}`,
      handKey: (row) => `${windowKey(row.w ?? '')}=${Number(row.v)}`,
    }),
  )
  .concat({
    name: 'allSubjectsByModel',
    reps: REPS_ALL,
    perSubject: false,
    params: () => ({ from: isoMonthFrom, to: isoMonthTo, groupBy: 'model' }),
    usage: () => ({
      from: MONTH_FROM,
      to: MONTH_TO,
      timeZone: 'UTC',
      groupBy: ['model'],
      filterGroupBy: {},
    }),
    handSql: (db) =>
      sql`SELECT data_values[indexOf(data_paths, ${MODEL_PATH})] AS model, sum(${VALUE}) AS v
          FROM ${db}.events FINAL
          WHERE namespace = ${NAMESPACE} AND type = ${EVENT_TYPE} AND ${MONTH}
          GROUP BY model ORDER BY model`,
    apiKey: (row) => `${row.groupBy.model}=${row.value}`,
    usageKey: (row) => `${row.g0}=${Number(row.value)}`,
    handKey: (row) => `${row.model}=${Number(row.v)}`,
  });

type Timing = { p50Ms: number | null; p99Ms: number | null };
type QueryResult = {
  name: string;
  reps: number;
  rows: number;
  api: Timing;
  apiSql: Timing;
  sql: Timing;
  ratioP50: number | null;
  apiSqlRatioP50: number | null;
};

type Runner = {
  ch: ClickHouse;
  meter: Meter;
  agent: Agent;
  base: URL;
  key: string;
};

async function measure(r: Runner, kind: QueryKind): Promise<QueryResult> {
  const db = identifier(r.ch.database);
  const samples = { api: [] as number[], apiSql: [] as number[], sql: [] as number[] };
  let rows = 0;
  const ways: Record<keyof typeof samples, (subject: string) => Promise<Answer>> = {
    api: async (subject) => {
      const url = new URL(`/api/v1/meters/${METER.slug}/query`, r.base);
      for (const [name, value] of Object.entries(kind.params(subject))) url.searchParams.append(name, value);
      const res = await get(r.agent, url, { authorization: `Bearer ${r.key}`, accept: 'application/json' });
      if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.body.slice(0, 300)}`);
      return (JSON.parse(res.body) as UsageResult).data.map(kind.apiKey);
    },
    apiSql: async (subject) =>
      (await r.ch.query<UsageRow>(buildUsageQuery(r.ch.database, r.meter, kind.usage(subject))))
        .filter((row) => Number(row.events) > 0)
        .map(kind.usageKey),
    sql: async (subject) =>
      (await r.ch.query<Record<string, string | number>>(kind.handSql(db, subject))).map(kind.handKey),
  };
  const order = Object.keys(ways) as (keyof typeof samples)[];
  note(`${kind.name}: ${WARMUP} warm-up and ${kind.reps} timed rounds of ${order.join(', ')}`);
  for (let rep = -WARMUP; rep < kind.reps; rep++) {
    const subject = kind.perSubject ? subjectName(Math.floor(Math.random() * SUBJECTS)) : '';
    const answers: Partial<Record<keyof typeof samples, Answer>> = {};
    // The order rotates, so no way always runs on caches another just warmed.
    const shift = ((rep % order.length) + order.length) % order.length;
    for (const way of [...order.slice(shift), ...order.slice(0, shift)]) {
      const start = now();
      const answer = await ways[way](subject);
      const ms = now() - start;
      if (rep >= 0) samples[way].push(ms);
      answers[way] = answer.sort();
    }
    const expected = JSON.stringify(answers.sql);
    for (const way of order) {
      if (JSON.stringify(answers[way]) !== expected) {
        throw new Error(
          `${kind.name} ${subject}: ${way} answered differently from the hand-written SQL\n` +
            `  ${way}: ${JSON.stringify(answers[way]).slice(0, 500)}\n  sql: ${expected.slice(0, 500)}`,
        );
      }
    }
    if ((answers.sql?.length ?? 0) === 0) throw new Error(`${kind.name} ${subject}: empty answer`);
    rows = Math.max(rows, answers.sql?.length ?? 0);
  }
  const timing = (values: number[]): Timing => ({
    p50Ms: percentile(values, 50),
    p99Ms: percentile(values, 99),
  });
  const result: QueryResult = {
    name: kind.name,
    reps: kind.reps,
    rows,
    api: timing(samples.api),
    apiSql: timing(samples.apiSql),
    sql: timing(samples.sql),
    ratioP50: null,
    apiSqlRatioP50: null,
  };
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? round(a / b, 2) : null);
  result.ratioP50 = ratio(result.api.p50Ms, result.sql.p50Ms);
  result.apiSqlRatioP50 = ratio(result.apiSql.p50Ms, result.sql.p50Ms);
  note(`  ${JSON.stringify(result)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const startedAt = Date.now();
  const git = gitState(ROOT);
  const result: Record<string, unknown> = {
    bench: 'query',
    at: new Date(startedAt).toISOString(),
    git: git.commit,
    dirty: git.dirty,
    machine: { cores: cpus().length, node: process.version, cpu: cpus()[0]?.model ?? 'unknown' },
  };
  const database = REUSE_DB || `mlq_${Date.now().toString(36)}`;
  identifier(database); // refuses an odd name before anything is created
  let env: TestEnv | undefined;
  let ch: ClickHouse | undefined;
  let api: MeterlineProcess | undefined;
  let agent: Agent | undefined;
  let error: string | undefined;
  let loaded: Load | undefined;
  const queries: QueryResult[] = [];

  const teardown = async () => {
    agent?.destroy();
    if (api) await stopProcess(api);
    const admin = ch ?? env?.ch;
    if (KEEP_DB) note(`kept ClickHouse database ${database} (BENCH_REUSE_DB=${database} reuses it)`);
    else await admin?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => undefined);
    await ch?.close().catch(() => undefined);
    await env?.cleanup().catch((err) => note('cleanup failed:', err));
  };
  process.once('SIGINT', () => {
    note('interrupted; cleaning up');
    api?.child.kill('SIGKILL');
    api = undefined;
    void teardown().finally(() => process.exit(130));
  });

  try {
    // The test env's PostgreSQL database (meters, keys) is fresh each run; ClickHouse is ours to keep or drop.
    env = await createTestEnv({ CLICKHOUSE_DATABASE: database, LOG_LEVEL: 'warn' });
    ch = createClickHouse(env.config.clickhouse);
    loaded = await ensureLoaded(ch);
    result.parts = await parts(ch);
    result.month = await monthRows(ch);
    note(`parts: ${JSON.stringify(result.parts)}`);

    const port = await freePort();
    const childEnv: NodeJS.ProcessEnv = { ...env.processEnv, PORT: String(port), HOST: '127.0.0.1' };
    if (process.env.BENCH_CHILD_NODE_OPTIONS) childEnv.NODE_OPTIONS = process.env.BENCH_CHILD_NODE_OPTIONS;
    api = startMeterline('api', childEnv);
    const child = api;
    const base = new URL(`http://127.0.0.1:${port}`);
    await waitUntil(
      async () => (await fetch(new URL('/healthz', base))).ok,
      () => `the api on port ${port}\n${tail(child.output())}`,
      30_000,
    );
    const key = (await env.keys.create(NAMESPACE, 'bench')).key;
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const created: PostResult = await post(
      agent,
      new URL('/api/v1/meters', base),
      { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      Buffer.from(JSON.stringify(METER)),
    );
    if (created.status !== 201)
      throw new Error(`creating the meter answered ${created.status}: ${created.body}`);
    // The meter as the API reads it, for the API's own SQL.
    const meter = await createMeterService(
      { db: env.db, ch },
      { maxWindows: env.config.meters.maxWindows },
    ).get(NAMESPACE, METER.slug);
    const runner: Runner = { ch, meter, agent, base, key };
    for (const kind of KINDS) queries.push(await measure(runner, kind));
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    note('failed:', err);
    if (api) note(tail(api.output()));
  } finally {
    await teardown();
  }

  const oneSubject = queries.filter((q) => q.name.startsWith('oneSubject'));
  Object.assign(result, {
    database: KEEP_DB ? database : undefined,
    events: loaded?.events ?? null,
    copies: loaded?.copies ?? null,
    subjects: loaded?.subjects ?? null,
    loadSeconds: loaded?.loadSeconds ?? null,
    reusedDb: loaded?.reused ?? false,
    queries,
    targets: TARGETS,
    met: {
      oneSubjectP50Ms:
        oneSubject.length === 2 &&
        oneSubject.every((q) => q.api.p50Ms !== null && q.api.p50Ms < TARGETS.oneSubjectP50Ms),
      ratio:
        oneSubject.length === 2 &&
        oneSubject.every((q) => q.ratioP50 !== null && q.ratioP50 <= TARGETS.ratio),
    },
    durationMs: Date.now() - startedAt,
    ...(error ? { error: error.split('\n')[0] } : {}),
  });

  writeResult('query', result);
  if (error) process.exitCode = 1;
}

await main();

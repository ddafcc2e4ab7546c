import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse } from '../src/clickhouse/client.ts';
import { eventKey } from '../src/events/event.ts';
import { createEventStore, type EventStore } from '../src/events/store.ts';
import { sinkStallCheck } from '../src/ops/routes.ts';
import { createSinkProgress } from '../src/sink/progress.ts';
import { createSink } from '../src/sink/service.ts';
import {
  buildTestApp,
  cloudEvent,
  createTestEnv,
  createTestSink,
  eventually,
  postEvents,
  type TestEnv,
} from './support/env.ts';
import { type KafkaTestBroker, startKafkaTestBroker } from './support/kafka-broker/index.ts';

/**
 * A log record of namespace `namespace` whose `data` is nested `depth` levels deep: valid JSON that
 * decodes, but more levels than flattening can walk. Written by hand, as an older producer writing
 * to the log directly might (ingest refuses such data at the door now).
 */
function deepRecord(namespace: string, id: string, depth: number) {
  const identity = { namespace, source: 'test', id };
  const data = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const value =
    `{"namespace":"${namespace}","id":"${id}","source":"test","type":"api-calls","subject":"poisoned",` +
    `"time":${Date.now()},"datacontenttype":null,"dataschema":null,"data":${data},"ingestedAt":${Date.now()}}`;
  return { key: eventKey(identity), value };
}

describe.each(['redis', 'kafka'] as const)(
  'one namespace’s poison never holds back another’s events (%s)',
  (transport) => {
    let broker: KafkaTestBroker | undefined;
    let env: TestEnv;
    let app: FastifyInstance;
    let keyB: string;

    beforeAll(async () => {
      if (transport === 'kafka') {
        broker = await startKafkaTestBroker({ autoCreateTopics: false, minSessionTimeoutMs: 1_000 });
      }
      env = await createTestEnv(
        broker
          ? {
              EVENT_LOG: 'kafka',
              KAFKA_BROKERS: broker.brokers.join(','),
              KAFKA_TOPIC: `poison-${Date.now().toString(36)}`,
              KAFKA_PARTITIONS: '2',
              SINK_CLAIM_IDLE_MS: '2000',
            }
          : {},
      );
      await env.log.setup();
      app = await buildTestApp(env);
      keyB = (await env.keys.create('ns-b')).key;
    });
    afterAll(async () => {
      await app?.close();
      await env?.cleanup();
      await broker?.close();
    });

    it('dead-letters A’s unstorable event with its reason and stores B’s events and A’s others', async () => {
      await env.log.publish([
        deepRecord('ns-a', 'poison', 20_000),
        {
          key: eventKey({ namespace: 'ns-a', source: 'test', id: 'fine' }),
          value: fineEvent('ns-a', 'fine'),
        },
      ]);
      const events = Array.from({ length: 20 }, (_, i) => cloudEvent({ id: `b-${i}`, subject: 'b' }));
      expect((await postEvents(app, keyB, events)).statusCode).toBe(204);

      const sink = createTestSink(env);
      await sink.start();
      try {
        await eventually(
          async () => (await env.store.countEvents('ns-b')) === 20,
          'B’s events stored',
          15_000,
        );
        await eventually(
          async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
          'the log to drain',
        );
      } finally {
        await sink.stop();
      }
      expect(await env.store.countEvents('ns-a')).toBe(1);
      const letters = await env.store.listDeadLetters('ns-a', 10);
      expect(letters).toHaveLength(1);
      expect(letters[0]?.reason).toMatch(/cannot be turned into a row|undecodable/);
      expect(letters[0]?.payload).toContain('"id":"poison"');
      expect(await env.store.listDeadLetters('ns-b', 10)).toEqual([]);
    });
  },
);

function fineEvent(namespace: string, id: string): string {
  return JSON.stringify({
    namespace,
    id,
    source: 'test',
    type: 'api-calls',
    subject: 'fine',
    time: Date.now(),
    datacontenttype: null,
    dataschema: null,
    data: { tokens: 1 },
    ingestedAt: Date.now(),
  });
}

describe('a stalled sink is visible', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
  });
  afterAll(() => env?.cleanup());

  it('fails /readyz while events wait and a sink that cannot reach ClickHouse stores nothing', async () => {
    const progress = createSinkProgress(env.redis, env.config.sink.consumerGroup);
    const lag = () => env.log.lag(env.config.sink.consumerGroup);
    const app = await buildTestApp(env, { checks: [sinkStallCheck(lag, progress.last, 1_000)] });
    const unreachable = createClickHouse({ ...env.config.clickhouse, url: 'http://127.0.0.1:1' });
    const sink = createSink(
      {
        log: env.log,
        store: createEventStore(unreachable),
        metrics: env.metrics,
        progress,
        logger: pino({ level: 'silent' }),
      },
      {
        group: env.config.sink.consumerGroup,
        consumer: 'cut-off',
        batchSize: 100,
        batchWaitMs: 20,
        insertMaxBytes: env.config.sink.insertMaxBytes,
        splitAfterFailures: 3,
      },
    );
    const readyz = async () => (await app.inject({ method: 'GET', url: '/readyz' })).json();
    try {
      expect((await readyz()).status).toBe('ready');
      const key = (await env.keys.create('stall')).key;
      expect((await postEvents(app, key, [cloudEvent()])).statusCode).toBe(204);
      await sink.start();
      expect((await readyz()).status).toBe('ready'); // waiting, but not for long yet
      await eventually(async () => (await readyz()).status === 'not ready', '/readyz to fail', 10_000);
      expect((await readyz()).checks.sinkProgress).toMatch(
        /1 events waiting and no sink batch stored for \d+ s/,
      );
      const failures = await env.metrics.sinkFailures.get();
      expect(failures.values.find((v) => v.labels.kind === 'outage')?.value).toBeGreaterThan(0);
      // Nothing was set aside for an outage.
      expect((await env.metrics.deadLetters.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
    } finally {
      await sink.stop();
      await unreachable.close();
    }
    // A sink that can store drains the backlog, and readiness comes back.
    const healthy = createTestSink(env);
    await healthy.start();
    await eventually(async () => (await lag()) === 0, 'the backlog to drain');
    await healthy.stop();
    expect((await readyz()).status).toBe('ready');
    expect(await env.store.countEvents('stall')).toBe(1);
    await app.close();
  });
});

describe('a failure that is neither bad data nor an outage', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
  });
  afterAll(() => env?.cleanup());

  /** The real store, except that any INSERT holding the marked event fails in a way nobody classified. */
  const faultyStore = (marker: string, ping = () => env.store.ping()) => ({
    ...env.store,
    ping,
    async insertRows(rows: readonly string[], signal?: AbortSignal) {
      if (rows.some((row) => row.includes(marker)))
        throw new Error('Code: 1001, e.displayText() = DB::Exception: std::exception');
      await env.store.insertRows(rows, signal);
    },
  });
  const sinkOn = (store: EventStore, consumer: string) =>
    createSink(
      { log: env.log, store, metrics: env.metrics, logger: pino({ level: 'silent' }) },
      {
        group: env.config.sink.consumerGroup,
        consumer,
        batchSize: 500,
        batchWaitMs: 20,
        insertMaxBytes: env.config.sink.insertMaxBytes,
        splitAfterFailures: 3,
      },
    );
  const publish = (namespace: string, ids: string[]) =>
    env.log.publish(
      ids.map((id) => ({
        key: eventKey({ namespace, source: 'test', id }),
        value: fineEvent(namespace, id),
      })),
    );

  it('is retried, then the batch is split until the one event causing it is set aside', async () => {
    await publish(
      'split',
      Array.from({ length: 50 }, (_, i) => (i === 31 ? 'culprit' : `ok-${i}`)),
    );
    const sink = sinkOn(faultyStore('"culprit"'), 'splits');
    await sink.start();
    await eventually(
      async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
      'the log to drain',
    );
    await sink.stop();
    expect(await env.store.countEvents('split')).toBe(49);
    const letters = await env.store.listDeadLetters('split', 10);
    expect(letters.map((l) => JSON.parse(l.payload).id)).toEqual(['culprit']);
    expect(letters[0]?.reason).toMatch(/failed 3 times while ClickHouse answered: .*std::exception/);
  });

  it('sets nothing aside while ClickHouse does not answer a ping: it may be an outage', async () => {
    await publish('hold', ['held-1', 'held-2']);
    const sink = sinkOn(
      faultyStore('"held-', () => Promise.reject(new Error('no answer'))),
      'holds',
    );
    await sink.start();
    await new Promise((r) => setTimeout(r, 3_000));
    await sink.stop();
    expect(await env.store.listDeadLetters('hold', 10)).toEqual([]);
    expect(await env.log.lag(env.config.sink.consumerGroup)).toBe(2);
    // Once the fault is gone the same events are stored, none lost.
    const healthy = createTestSink(env);
    await healthy.start();
    await eventually(
      async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
      'the log to drain',
    );
    await healthy.stop();
    expect(await env.store.countEvents('hold')).toBe(2);
  });
});

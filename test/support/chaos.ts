import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifier, sql } from '../../src/clickhouse/sql.ts';
import { buildTestApp, cloudEvent, createTestEnv, eventually, type TestEnv } from './env.ts';
import { type MeterlineProcess, startMeterline } from './process.ts';

export type ChaosOptions = {
  /** Environment for the transport under test (EVENT_LOG, brokers, ...). */
  env: () => Promise<NodeJS.ProcessEnv>;
  /** How long a killed consumer's messages stay held before another takes them. */
  claimIdleMs: number;
};

/**
 * Two `meterline sink` processes in one consumer group, killed at random points (SIGKILL: mid
 * batch, between insert and acknowledgement, anywhere) and restarted under the same name or a new
 * one, while clients post and retry batches. Every accepted event must end up stored exactly once.
 */
export function sinkChaosSuite(name: string, options: ChaosOptions) {
  describe(`sink processes killed at random points: ${name}`, () => {
    let env: TestEnv;
    let app: FastifyInstance;
    let key: string;
    const running = new Set<MeterlineProcess>();

    beforeAll(async () => {
      env = await createTestEnv(await options.env());
      await env.log.setup();
      app = await buildTestApp(env);
      key = (await env.keys.create('acme')).key;
    });

    afterAll(async () => {
      for (const p of running) p.child.kill('SIGKILL');
      await app?.close();
      await env?.cleanup();
    });

    function startSink(consumer: string) {
      const p = startMeterline('sink', {
        ...env.processEnv,
        SINK_BATCH_SIZE: '37',
        SINK_BATCH_WAIT_MS: '5',
        SINK_CONSUMER_NAME: consumer,
        SINK_CLAIM_IDLE_MS: String(options.claimIdleMs),
      });
      running.add(p);
      void p.exited.then(() => running.delete(p));
      return p;
    }

    const post = (events: unknown[]) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/events',
        headers: { 'content-type': 'application/cloudevents-batch+json', authorization: `Bearer ${key}` },
        payload: JSON.stringify(events),
      });

    async function totals() {
      const db = identifier(env.ch.database);
      const [row] = await env.ch.query<{ events: string; tokens: number }>(
        sql`SELECT count() AS events, sum(arrayElement(data_decimals, indexOf(data_paths, '$.tokens'))) AS tokens
            FROM ${db}.events FINAL WHERE namespace = 'acme'`,
      );
      return { events: Number(row?.events), tokens: Number(row?.tokens) };
    }

    it('end with every accepted event stored exactly once', { timeout: 180_000 }, async () => {
      // Every choice below (when to kill, whom, under which name it returns, which batches a client
      // retries, how many events each holds) comes from the seed; CHAOS_SEED replays a run's choices.
      const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
      console.info(`${name}: chaos seed ${seed} (replay with CHAOS_SEED=${seed})`);
      const random = seededRandom(seed);
      const batches = 30;
      let expectedEvents = 0;
      let expectedTokens = 0;
      // Two members of one group from the start, so each restart is also a rebalance mid-stream.
      const sinks = [startSink('sink-a'), startSink('sink-b')];

      const chaos = (async () => {
        for (let round = 0; round < 8; round++) {
          await new Promise((r) => setTimeout(r, 300 + random() * 900));
          const victim = random() < 0.5 ? 0 : 1;
          sinks[victim]?.child.kill('SIGKILL');
          await sinks[victim]?.exited;
          // Back under its old name (re-reads its own unacknowledged messages) or a new one.
          sinks[victim] = startSink(random() < 0.5 ? `sink-${victim === 0 ? 'a' : 'b'}` : `sink-${round}`);
        }
      })();

      for (let b = 0; b < batches; b++) {
        const perBatch = 1 + Math.floor(random() * 80);
        const events = Array.from({ length: perBatch }, (_, i) => {
          const tokens = 1 + Math.floor(random() * 1000);
          expectedEvents += 1;
          expectedTokens += tokens;
          return cloudEvent({ id: `evt-${b}-${i}`, subject: `customer-${i % 7}`, data: { tokens } });
        });
        expect((await post(events)).statusCode).toBe(204);
        // A client that retries a batch it already sent (say, after a timeout) must change nothing.
        if (random() < 0.2) expect((await post(events)).statusCode).toBe(204);
        await new Promise((r) => setTimeout(r, 40));
      }
      await chaos;

      await eventually(
        async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
        'sinks to drain',
        90_000,
      );
      for (const sink of sinks) sink.child.kill('SIGTERM');
      expect(await Promise.all(sinks.map((s) => s.exited))).toEqual([0, 0]);

      expect(await totals()).toEqual({ events: expectedEvents, tokens: expectedTokens });
    });
  });
}

/** mulberry32: a small, fast PRNG whose whole state is the seed, so a run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { buildTestApp, cloudEvent, createTestEnv, eventually, type TestEnv } from './support/env.ts';
import { type MeterlineProcess, startMeterline } from './support/process.ts';

let env: TestEnv;
let app: FastifyInstance;
let key: string;
const running = new Set<MeterlineProcess>();

beforeAll(async () => {
  env = await createTestEnv();
  app = await buildTestApp(env);
  key = (await env.keys.create('acme')).key;
});

afterAll(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await app.close();
  await env.cleanup();
});

function startSink(consumer: string) {
  const p = startMeterline('sink', {
    ...env.processEnv,
    SINK_BATCH_SIZE: '37',
    SINK_BATCH_WAIT_MS: '5',
    SINK_CONSUMER_NAME: consumer,
    // Entries a killed consumer held are claimed by a differently named successor after this long.
    SINK_CLAIM_IDLE_MS: '500',
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

describe('sink processes killed at random points', () => {
  it('end with every accepted event stored exactly once', async () => {
    const batches = 30;
    const perBatch = 50;
    let expectedTokens = 0;
    let kills = 0;
    let sink = startSink('sink-a');

    // Post while a chaos loop SIGKILLs the sink at random moments and restarts it, sometimes under
    // the same name (it re-reads its own unacknowledged entries) and sometimes under a new one
    // (the dead consumer's entries are claimed after the idle time).
    const chaos = (async () => {
      for (let round = 0; round < 8; round++) {
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 900));
        sink.child.kill('SIGKILL');
        await sink.exited;
        kills += 1;
        sink = startSink(round % 2 === 0 ? 'sink-a' : `sink-${round}`);
      }
    })();

    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: perBatch }, (_, i) => {
        const tokens = b * perBatch + i + 1;
        expectedTokens += tokens;
        return cloudEvent({ id: `evt-${b}-${i}`, subject: `customer-${i % 7}`, data: { tokens } });
      });
      expect((await post(events)).statusCode).toBe(204);
      // A client that retries a batch it already sent (say, after a timeout) must change nothing.
      if (b % 5 === 0) expect((await post(events)).statusCode).toBe(204);
      await new Promise((r) => setTimeout(r, 40));
    }
    await chaos;

    await eventually(
      async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
      'sink to drain',
      60_000,
    );
    sink.child.kill('SIGTERM');
    expect(await sink.exited).toBe(0);

    expect(kills).toBe(8);
    const result = await totals();
    expect(result.events).toBe(batches * perBatch);
    expect(result.tokens).toBe(expectedTokens);
  });
});

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { encodeLogEvent, eventKey, type LogEvent } from '../src/events/event.ts';
import type { EventStore } from '../src/events/store.ts';
import { createSink } from '../src/sink/service.ts';
import { createTestEnv, eventually, type TestEnv } from './support/env.ts';
import { type MeterlineProcess, startMeterline } from './support/process.ts';

const CLAIM_IDLE_MS = 1_000;

/** Blocks the whole process, timers and sockets included, as a GC pause or a stopped VM would. */
function freezeProcess(ms: number) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('Redis Streams sink lease: a holder that froze mid-batch does not write', () => {
  let env: TestEnv;
  let standby: MeterlineProcess | undefined;
  beforeAll(async () => {
    env = await createTestEnv({ SINK_CLAIM_IDLE_MS: String(CLAIM_IDLE_MS), SINK_BATCH_WAIT_MS: '200' });
  });
  afterAll(async () => {
    standby?.child.kill('SIGKILL');
    await env?.cleanup();
  });

  it('stores one row when the holder stalls between lookup and insert while a conflicting copy arrives', {
    timeout: 60_000,
  }, async () => {
    const copy = (day: string): LogEvent => ({
      namespace: 'acme',
      id: 'contested',
      source: 'test',
      type: 'api-calls',
      subject: 'lease',
      time: Date.parse(`2026-06-${day}T00:00:00Z`),
      datacontenttype: null,
      dataschema: null,
      data: { tokens: 1 },
      ingestedAt: Date.now(),
    });
    // The holder freezes right after its identity lookup found nothing, for three lease lengths.
    let freezeNext = true;
    const freezingStore: EventStore = {
      ...env.store,
      async existingKeys(events) {
        const found = await env.store.existingKeys(events);
        if (freezeNext && events.some((e) => e.id === 'contested')) {
          freezeNext = false;
          freezeProcess(3 * CLAIM_IDLE_MS);
        }
        return found;
      },
    };
    const holder = createSink(
      { log: env.log, store: freezingStore, metrics: env.metrics, logger: pino({ level: 'silent' }) },
      {
        group: env.config.sink.consumerGroup,
        consumer: 'freezes',
        batchSize: 1,
        batchWaitMs: 200,
        insertMaxBytes: env.config.sink.insertMaxBytes,
        splitAfterFailures: 3,
      },
    );
    await holder.start();
    const stream = env.config.eventLog.kind === 'redis' ? env.config.eventLog.stream : '';
    const lease = `${stream}:${env.config.sink.consumerGroup}:active`;
    await eventually(async () => (await env.redis.get(lease))?.startsWith('freezes:') ?? false, 'the lease');

    // A second sink process stands by, ready to take over once the holder's lease lapses.
    standby = startMeterline('sink', {
      ...env.processEnv,
      LOG_LEVEL: 'info',
      SINK_CONSUMER_NAME: 'takes-over',
      SINK_BATCH_SIZE: '10',
    });
    await eventually(
      async () => standby?.output().includes('sink started') ?? false,
      'the standby sink',
      30_000,
    );

    // A client's retry with another time lands right behind the first copy.
    const first = copy('01');
    const retry = copy('02');
    await env.log.publish([
      { key: eventKey(first), value: encodeLogEvent(first) },
      { key: eventKey(retry), value: encodeLogEvent(retry) },
    ]);
    await eventually(async () => !freezeNext, 'the holder to take the first copy');
    await eventually(
      async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0,
      'the log to drain',
    );
    standby.child.kill('SIGTERM');
    expect(await standby.exited).toBe(0);
    await holder.stop();

    const db = identifier(env.ch.database);
    const rows = await env.ch.query<{ time_ms: string }>(
      sql`SELECT time_ms FROM ${db}.events WHERE namespace = 'acme' AND id = 'contested'`,
    );
    // One physical row, the first copy's: the frozen holder wrote nothing after waking.
    expect(rows.map((r) => Number(r.time_ms))).toEqual([first.time]);
    expect(await env.store.countEvents('acme')).toBe(1);
    const lost = (await env.metrics.sinkFailures.get()).values.find((v) => v.labels.kind === 'lease_lost');
    expect(lost?.value).toBe(1);
  });
});

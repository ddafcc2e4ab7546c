import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifier, sql } from '../src/clickhouse/sql.ts';
import { cloudEvent, createTestEnv, createTestSink, eventually, type TestEnv } from './support/env.ts';
import { BIN, freePort, type MeterlineProcess, startMeterline } from './support/process.ts';

let env: TestEnv;
let key: string;
const running: MeterlineProcess[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  key = (await env.keys.create('acme')).key;
});

afterAll(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await env.cleanup();
});

async function startAll() {
  const port = await freePort();
  const p = startMeterline('all', {
    ...env.processEnv,
    PORT: String(port),
    HOST: '127.0.0.1',
    SINK_BATCH_SIZE: '200',
  });
  running.push(p);
  const base = `http://127.0.0.1:${port}`;
  await eventually(
    async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok === true,
    `api on ${port}: ${p.output()}`,
  );
  return { p, base };
}

describe('meterline all', () => {
  it('serves health, readiness, metrics and the OpenAPI document', async () => {
    const { p, base } = await startAll();
    const ready = await fetch(`${base}/readyz`);
    const body = (await ready.json()) as { checks: Record<string, string> };
    expect(ready.status, JSON.stringify(body)).toBe(200);
    expect(body.checks).toEqual({
      clickhouse: 'ok',
      postgres: 'ok',
      redis: 'ok',
      eventLog: 'ok',
      sinkLag: 'ok',
      sinkProgress: 'ok',
    });

    const post = await fetch(`${base}/api/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', authorization: `Bearer ${key}` },
      body: JSON.stringify(cloudEvent()),
    });
    expect(post.status).toBe(204);
    expect(post.headers.get('x-request-id')).toBeTruthy();

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^meterline_events_accepted_total 1$/m);
    expect(metrics).toMatch(/^meterline_sink_lag \d+$/m);
    for (const name of [
      'events_rejected_total',
      'events_stored_total',
      'duplicates_dropped_total',
      'dead_letters_total',
      'sink_batch_size',
      'sink_batch_seconds',
    ]) {
      expect(metrics).toContain(`meterline_${name}`);
    }

    const openapi = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths['/api/v1/events'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(openapi.paths['/api/v1/dead-letters']).toHaveProperty('get');
    expect(Object.keys(openapi.paths['/api/v1/events']?.post?.requestBody?.content ?? {}).sort()).toEqual([
      'application/cloudevents+json',
      'application/cloudevents-batch+json',
      'application/json',
    ]);
    const event = Object.values(openapi.components.schemas).find(
      (s) => s.properties && 'specversion' in s.properties,
    );
    expect(Object.keys(event?.properties ?? {})).toEqual(
      expect.arrayContaining(['id', 'source', 'subject', 'time', 'data']),
    );

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('on SIGTERM stops taking requests, and every event it acknowledged is stored', async () => {
    const { p, base } = await startAll();
    const acknowledged: string[] = [];
    let stop = false;
    const clients = Array.from({ length: 4 }, async (_, c) => {
      for (let b = 0; !stop; b++) {
        const events = Array.from({ length: 20 }, (_, i) => cloudEvent({ id: `c${c}-b${b}-e${i}` }));
        const res = await fetch(`${base}/api/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents-batch+json', authorization: `Bearer ${key}` },
          body: JSON.stringify(events),
        }).catch(() => null);
        if (res?.status === 204) acknowledged.push(...events.map((e) => e.id));
        else if (!res || res.status === 503) break;
      }
    });
    await eventually(async () => acknowledged.length >= 400, `traffic to flow: ${acknowledged.length}`);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    stop = true;
    await Promise.all(clients);

    // Whatever the sink had not taken before the shutdown, a new sink takes now.
    const sink = createTestSink(env);
    await sink.start();
    await eventually(async () => (await env.log.lag(env.config.sink.consumerGroup)) === 0, 'sink to drain');
    await sink.stop();
    const db = identifier(env.ch.database);
    const rows = await env.ch.query<{ id: string }>(
      sql`SELECT id FROM ${db}.events FINAL WHERE namespace = 'acme'`,
    );
    const stored = new Set(rows.map((r) => r.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
  });

  it('keys create prints a key once, on stdout alone, that the api accepts for its namespace', async () => {
    const p = startMeterline('keys', { ...env.processEnv });
    expect(await p.exited).toBe(2); // no subcommand: usage
    const created = spawnSync(process.execPath, [BIN, 'keys', 'create', '--namespace', 'cli-made'], {
      env: env.processEnv,
      encoding: 'utf8',
    });
    expect(created.status).toBe(0);
    const printed = created.stdout.trim();
    expect(printed).toMatch(/^ml_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('cli-made');
    expect(await env.keys.authenticate(printed)).toBe('cli-made');
  });

  it('refuses to start on a bad configuration value, naming the variable', async () => {
    const p = startMeterline('api', { ...env.processEnv, PORT: 'eighty', SINK_BATCH_SIZE: '-1' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/PORT: /);
    expect(p.output()).toMatch(/SINK_BATCH_SIZE: /);
  });
});

describe('meterline sink alone', () => {
  it('serves health and its own metrics: events stored, batches', async () => {
    const port = await freePort();
    const p = startMeterline('sink', { ...env.processEnv, PORT: String(port), HOST: '127.0.0.1' });
    running.push(p);
    const base = `http://127.0.0.1:${port}`;
    await eventually(
      async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok === true,
      'sink health',
    );
    const before = await (await fetch(`${base}/metrics`)).text();
    const stream = env.config.eventLog.kind === 'redis' ? env.config.eventLog.stream : '';
    const event = {
      namespace: 'acme',
      id: 'sink-metrics',
      source: 'test',
      type: 'api-calls',
      subject: 'c',
      time: Date.now(),
      datacontenttype: null,
      dataschema: null,
      data: null,
      ingestedAt: Date.now(),
    };
    await env.redis.xadd(
      stream,
      '*',
      'k',
      JSON.stringify(['acme', 'test', 'sink-metrics']),
      'v',
      JSON.stringify(event),
    );
    await eventually(
      async () => /^meterline_events_stored_total 1$/m.test(await (await fetch(`${base}/metrics`)).text()),
      'stored counter',
    );
    expect(before).toMatch(/^meterline_events_stored_total 0$/m);
    expect((await fetch(`${base}/api/v1/events`)).status).toBe(404);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });
});

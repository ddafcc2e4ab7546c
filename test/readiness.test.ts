import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse } from '../src/clickhouse/client.ts';
import { sinkLagCheck } from '../src/ops/routes.ts';
import { buildTestApp, createTestEnv, type TestEnv } from './support/env.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env.cleanup();
});

describe('/readyz', () => {
  it('answers 503 naming the dependency that is down, while /healthz stays 200', async () => {
    const unreachable = createClickHouse({ ...env.config.clickhouse, url: 'http://127.0.0.1:1' });
    const app = await buildTestApp(env, {
      checks: [
        { name: 'clickhouse', check: () => unreachable.ping() },
        { name: 'eventLog', check: () => env.log.ping() },
        { name: 'hung', check: () => new Promise<void>(() => undefined) },
      ],
    });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    const body = ready.json();
    expect(body.status).toBe('not ready');
    expect(body.checks.eventLog).toBe('ok');
    expect(body.checks.clickhouse).toMatch(/ECONNREFUSED|connect/i);
    expect(body.checks.hung).toMatch(/no answer within/);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
    await unreachable.close();
  });

  it('answers 503 when the sink is further behind than the bound', async () => {
    const app = await buildTestApp(env, {
      checks: [sinkLagCheck(() => env.log.lag('nobody-consumes-this'), 2)],
    });
    const stream = env.config.eventLog.kind === 'redis' ? env.config.eventLog.stream : '';
    for (let i = 0; i < 3; i++) await env.redis.xadd(stream, '*', 'k', `k${i}`, 'v', 'x');
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.sinkLag).toBe('3 events waiting (bound 2)');
    await app.close();
  });
});

import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from './support/env.ts';
import { startMeterline } from './support/process.ts';

let env: TestEnv;
let blocker: Server;
let port: number;

beforeAll(async () => {
  env = await createTestEnv();
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  port = (blocker.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => blocker.close(resolve));
  await env.cleanup();
});

describe('a port already in use', () => {
  it.each(['api', 'all'])(
    'meterline %s says so in one line and exits 1 before any role starts',
    async (role) => {
      const p = startMeterline(role, {
        ...env.processEnv,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
      });
      expect(await p.exited).toBe(1);
      const lines = p.output().trim().split('\n');
      // Log lines are JSON; what is meant for the operator is the one line that is not.
      expect(lines.filter((l) => !l.startsWith('{'))).toEqual([
        `port ${port} is already in use on 127.0.0.1 (PORT); stop what holds it or choose another PORT`,
      ]);
      expect(p.output()).not.toMatch(/sink started|worker started/);
      // No sink joined the group: it would have registered as a consumer of the stream.
      const stream = env.config.eventLog.kind === 'redis' ? env.config.eventLog.stream : '';
      const consumers = await env.redis
        .xinfo('CONSUMERS', stream, env.config.sink.consumerGroup)
        .catch(() => []);
      expect(consumers).toEqual([]);
    },
  );
});

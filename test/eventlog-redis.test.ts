import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStreamsLog } from '../src/eventlog/redis-streams.ts';
import { eventually } from './support/env.ts';
import { eventLogContract } from './support/eventlog-contract.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const streams: string[] = [];
const silent = pino({ level: 'silent' });

function open(stream: string, maxLength = 100_000, claimIdleMs = 300) {
  streams.push(stream);
  return createRedisStreamsLog(new Redis(REDIS_URL), { stream, maxLength, claimIdleMs }, silent);
}

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  if (streams.length > 0) await redis.del(...new Set(streams));
  redis.disconnect();
});

eventLogContract(
  'redis streams',
  async (target) => open(`mlt:${target}`),
  (log) => log.close(),
);

describe('redis streams: one active consumer per group', () => {
  it('lets one consumer handle batches at a time, and a standby take over the moment it stops', async () => {
    // A long claim time: the handover below comes from the stopped consumer releasing its lease.
    const log = open(`mlt:lease-${Date.now()}`, 100_000, 60_000);
    const options = (consumer: string) => ({ group: 'g', consumer, maxBatchSize: 5, maxWaitMs: 10 });
    let inFlight = 0;
    let mostInFlight = 0;
    const seen = new Map<string, string[]>();
    const handle = (consumer: string) => async (records: { key: string }[]) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      seen.set(consumer, [...(seen.get(consumer) ?? []), ...records.map((r) => r.key)]);
      inFlight -= 1;
    };
    const first = await log.subscribe(options('first'), handle('first'));
    await log.publish(Array.from({ length: 40 }, (_, i) => ({ key: `a${i}`, value: '' })));
    await eventually(async () => (seen.get('first') ?? []).length === 40, 'first consumer to take all');
    const second = await log.subscribe(options('second'), handle('second'));
    await log.publish(Array.from({ length: 40 }, (_, i) => ({ key: `b${i}`, value: '' })));
    await eventually(async () => (seen.get('first') ?? []).length === 80, 'active consumer to take the rest');
    expect(seen.get('second')).toBeUndefined();

    await first.stop();
    await log.publish([{ key: 'c0', value: '' }]);
    await eventually(async () => (seen.get('second') ?? []).includes('c0'), 'standby to take over');
    expect(mostInFlight).toBe(1);
    await second.stop();
    await log.close();
  });
});

describe('redis streams: the lease under slow handlers and shared names', () => {
  it('keeps a batch slower than the claim time to one consumer, even when both share a name', async () => {
    const log = open(`mlt:lease-slow-${Date.now()}`, 100_000, 1_000);
    const options = { group: 'g', consumer: 'same-name', maxBatchSize: 10, maxWaitMs: 10 };
    let inFlight = 0;
    let mostInFlight = 0;
    const handled: string[] = [];
    const handle = async (records: { key: string }[]) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      // Longer than the claim time: the lease must be renewed while the handler runs.
      await new Promise((r) => setTimeout(r, 1_500));
      handled.push(...records.map((r) => r.key));
      inFlight -= 1;
    };
    const subs = [await log.subscribe(options, handle), await log.subscribe(options, handle)];
    await log.publish(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: '' })));
    await eventually(async () => handled.length >= 20, 'all entries handled');
    expect(mostInFlight).toBe(1);
    expect(new Set(handled).size).toBe(20);
    expect(handled).toHaveLength(20); // nothing taken over and handled twice
    await Promise.all(subs.map((sub) => sub.stop()));
    await log.close();
  });
});

describe('redis streams: bounded length', () => {
  it('refuses to publish past the bound instead of trimming unacknowledged entries, and recovers after the sink acks', async () => {
    const stream = `mlt:bounded-${Date.now()}`;
    const log = open(stream, 10);
    await log.publish(Array.from({ length: 8 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    await expect(
      log.publish([
        { key: 'a', value: 'a' },
        { key: 'b', value: 'b' },
        { key: 'c', value: 'c' },
      ]),
    ).rejects.toMatchObject({ code: 'ML_ERR_EVENTLOG_FULL', status: 503 });

    // Nothing of the refused request went in, and nothing unacknowledged was trimmed.
    const redis = new Redis(REDIS_URL);
    expect(await redis.xlen(stream)).toBe(8);

    const seen: string[] = [];
    const sub = await log.subscribe(
      { group: 'g', consumer: 'c', maxBatchSize: 100, maxWaitMs: 10 },
      async (records) => {
        seen.push(...records.map((r) => r.key));
      },
    );
    await eventually(async () => seen.length === 8, 'sink to take all entries');
    await sub.stop();
    // Acknowledged entries may go; the publish that failed before now fits.
    await log.publish([
      { key: 'a', value: 'a' },
      { key: 'b', value: 'b' },
      { key: 'c', value: 'c' },
    ]);
    expect(await redis.xlen(stream)).toBeLessThanOrEqual(10);
    expect(await log.lag('g')).toBe(3);
    redis.disconnect();
    await log.close();
  });
});

describe('redis streams: Redis restarts under a running consumer', () => {
  it('keeps consuming after the outage and loses nothing that was acknowledged to the producer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlt-redis-'));
    const port = 16_379 + Math.floor(Math.random() * 1000);
    const start = () =>
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--save',
          '',
        ],
        { stdio: 'ignore' },
      );
    const ping = async () =>
      spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';
    const waitUp = () => eventually(ping, 'redis up');
    let server = start();
    await waitUp();
    const log = createRedisStreamsLog(
      new Redis(port),
      { stream: 's', maxLength: 100_000, claimIdleMs: 300 },
      silent,
    );
    const seen = new Set<string>();
    const sub = await log.subscribe(
      { group: 'g', consumer: 'c', maxBatchSize: 20, maxWaitMs: 10 },
      async (records) => {
        for (const r of records) seen.add(r.key);
      },
    );
    await log.publish(Array.from({ length: 50 }, (_, i) => ({ key: `before-${i}`, value: 'x' })));
    await eventually(async () => seen.size === 50, 'first half');

    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    server = start();
    await waitUp();
    await eventually(
      async () =>
        await log.publish([{ key: 'probe', value: 'x' }]).then(
          () => true,
          () => false,
        ),
      'publish after restart',
    );
    await log.publish(Array.from({ length: 50 }, (_, i) => ({ key: `after-${i}`, value: 'x' })));
    await eventually(async () => seen.size === 101, 'second half after the restart');
    await sub.stop();
    await log.close();
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('redis streams: the lease fences writes', () => {
  it('refuses a write once another consumer holds the lease, and hands it the batch', async () => {
    const stream = `mlt:fence-${Date.now()}`;
    const log = open(stream, 100_000, 60_000);
    const redis = new Redis(REDIS_URL);
    await log.publish([{ key: 'only', value: '' }]);
    let release: (() => void) | undefined;
    const outcomes: string[] = [];
    const sub = await log.subscribe(
      { group: 'g', consumer: 'first', maxBatchSize: 5, maxWaitMs: 10 },
      async (_records, batch) => {
        if (outcomes.length > 0) return; // the redelivery after the refusal: nothing more to check
        await new Promise<void>((r) => {
          release = r;
        });
        const verdict = await batch.writeGuard().then(
          () => 'written',
          (err: Error) => err.name,
        );
        outcomes.push(verdict);
        if (verdict !== 'written') throw new Error('not written');
      },
    );
    await eventually(async () => release !== undefined, 'the batch in hand');
    // Another process took the lease while this one was busy (it had looked frozen to it).
    await redis.set(`${stream}:g:active`, 'someone-else', 'PX', 60_000);
    release?.();
    await eventually(async () => outcomes.length > 0, 'the write attempt');
    expect(outcomes).toEqual(['LeaseLostError']);
    // The entry stays pending for whoever holds the lease: nothing was acknowledged.
    expect(await log.lag('g')).toBe(1);
    await redis.del(`${stream}:g:active`);
    await eventually(async () => (await log.lag('g')) === 0, 'the batch once the lease is free again');
    await sub.stop();
    redis.disconnect();
  });
});

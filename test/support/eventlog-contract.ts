import { afterAll, describe, expect, it } from 'vitest';
import type { EventLog, LogMessage, LogRecord, Subscription } from '../../src/eventlog/event-log.ts';
import { eventually } from './env.ts';

/**
 * The promises every event-log transport keeps (see src/eventlog/event-log.ts). A transport's test
 * file calls this with a factory that opens a client on the named stream or topic; each test uses
 * a new name, and opening a name twice gives two clients of one log, as two processes would have.
 */
export function eventLogContract(
  name: string,
  openLog: (target: string) => Promise<EventLog>,
  /**
   * What a consumer process dying does to its client, beyond its handler never returning: by default
   * nothing (Kafka notices the missing heartbeats); Redis Streams also needs its connection gone, since
   * a live process keeps renewing its lease while a batch is stored.
   */
  die: (log: EventLog) => Promise<void> = async () => {},
) {
  describe(`event log contract: ${name}`, () => {
    const opened: EventLog[] = [];
    const subscriptions: Subscription[] = [];
    let n = 0;
    const prefix = `contract-${Date.now().toString(36)}`;
    const open = async (target: string) => {
      const log = await openLog(target);
      opened.push(log);
      await log.setup();
      return log;
    };
    let target = '';
    const fresh = () => {
      target = `${prefix}-${++n}`;
      return open(target);
    };
    const messages = (count: number): LogMessage[] =>
      Array.from({ length: count }, (_, i) => ({
        key: `${target}-${i}`,
        value: JSON.stringify({ i, target }),
      }));
    // One consumer group per test: a group's members must agree on what they subscribe to (Kafka).
    const group = () => `${target}-group`;
    const options = (consumer: string) => ({ group: group(), consumer, maxBatchSize: 50, maxWaitMs: 20 });

    /** Subscribes and records every record delivered to a handler that resolved. */
    const collect = async (log: EventLog, consumer: string, handle?: (r: LogRecord[]) => Promise<void>) => {
      const seen: LogRecord[] = [];
      const sub = await log.subscribe(options(consumer), async (records) => {
        await handle?.(records);
        seen.push(...records);
      });
      subscriptions.push(sub);
      return { seen, sub };
    };

    afterAll(async () => {
      for (const sub of subscriptions) await sub.stop().catch(() => undefined);
      for (const log of opened) await log.close();
    });

    it('delivers every published message to the group, keys and values intact', async () => {
      const log = await fresh();
      const sent = messages(120);
      await log.publish(sent.slice(0, 70));
      await log.publish(sent.slice(70));
      const { seen, sub } = await collect(log, 'c1');
      await eventually(async () => seen.length >= sent.length, 'all messages');
      await sub.stop();
      expect(seen.map(({ key, value }) => ({ key, value })).sort(byKey)).toEqual([...sent].sort(byKey));
      expect(await log.lag(group())).toBe(0);
    });

    it('redelivers a batch whose handler failed, and acknowledges it once it succeeds', async () => {
      const log = await fresh();
      await log.publish(messages(10));
      let failures = 0;
      const { seen, sub } = await collect(log, 'c1', async () => {
        if (failures < 2) {
          failures += 1;
          throw new Error('ClickHouse is down');
        }
      });
      await eventually(async () => seen.length >= 10, 'redelivery after failures');
      await sub.stop();
      expect(failures).toBe(2);
      expect(new Set(seen.map((r) => r.key)).size).toBe(10);
      expect(await log.lag(group())).toBe(0);
    });

    it('lets the consumer holding a batch write it: writeGuard resolves', async () => {
      const log = await fresh();
      await log.publish(messages(3));
      const guarded: boolean[] = [];
      const sub = await log.subscribe(options('writer'), async (records, batch) => {
        const signal = await batch.writeGuard();
        guarded.push(...records.map(() => signal?.aborted !== true));
      });
      subscriptions.push(sub);
      await eventually(async () => guarded.length >= 3, 'every message written');
      await sub.stop();
      expect(guarded.every(Boolean)).toBe(true);
      expect(await log.lag(group())).toBe(0);
    });

    it('counts unacknowledged messages as lag until the sink takes them', async () => {
      const log = await fresh();
      await log.publish(messages(25));
      expect(await log.lag(group())).toBe(25);
      const { seen, sub } = await collect(log, 'c1');
      await eventually(async () => seen.length === 25, 'all messages');
      await sub.stop();
      expect(await log.lag(group())).toBe(0);
    });

    it('hands a dead consumer’s unacknowledged batch to the next consumer of the group', async () => {
      const log = await fresh();
      const sent = messages(30);
      await log.publish(sent);
      // The first consumer takes a batch and "dies": its handler never returns.
      let took = 0;
      let revive: () => void = () => undefined;
      const hung = await log.subscribe(options('dies'), async (records) => {
        took += records.length;
        // Hangs like a dead process: no acknowledgement, no heartbeat, until the test ends.
        await new Promise<void>((resolve) => {
          revive = resolve;
        });
      });
      await eventually(async () => took > 0, 'first consumer to take a batch');
      await die(log);
      const second = await open(target);
      const { seen } = await collect(second, 'survivor');
      await eventually(
        async () => new Set(seen.map((r) => r.key)).size === sent.length,
        'takeover of all messages',
      );
      expect(new Set(seen.map((r) => r.key))).toEqual(new Set(sent.map((m) => m.key)));
      revive();
      await hung.stop();
    });

    it('stop() waits for the batch in hand and acknowledges it', async () => {
      const log = await fresh();
      await log.publish(messages(5));
      let release: () => void = () => undefined;
      let started = false;
      let finished = 0;
      const sub = await log.subscribe(options('slow'), async (records) => {
        started = true;
        await new Promise<void>((r) => {
          release = r;
        });
        finished += records.length;
      });
      await eventually(async () => started, 'batch to start');
      const stopping = sub.stop();
      setTimeout(() => release(), 100);
      await stopping;
      expect(finished).toBeGreaterThan(0);
      // Whatever finished was acknowledged; the rest waits for the next consumer.
      expect(await log.lag(group())).toBe(5 - finished);
    });
  });
}

const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);

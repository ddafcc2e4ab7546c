import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaLog } from '../src/eventlog/kafka.ts';
import { eventually } from './support/env.ts';
import { eventLogContract } from './support/eventlog-contract.ts';
import { type KafkaTestBroker, startKafkaTestBroker } from './support/kafka-broker/index.ts';

let broker: KafkaTestBroker;

beforeAll(async () => {
  // Short session timeouts keep the dead-consumer case to seconds.
  broker = await startKafkaTestBroker({ autoCreateTopics: false, minSessionTimeoutMs: 1_000 });
});
afterAll(() => broker.close());

eventLogContract('kafka (kafkajs against the in-repo test broker)', async (target) =>
  createKafkaLog(
    { brokers: broker.brokers, topic: target, clientId: 'contract', partitions: 3, sessionTimeoutMs: 2_000 },
    pino({ level: 'silent' }),
  ),
);

describe('kafka: the partition count is fixed once the topic exists', () => {
  const open = (topic: string, partitions: number) =>
    createKafkaLog(
      { brokers: broker.brokers, topic, clientId: 'partitions', partitions, sessionTimeoutMs: 2_000 },
      pino({ level: 'silent' }),
    );

  it('refuses a topic whose partition count is not KAFKA_PARTITIONS, at start and on publish', async () => {
    const topic = `partitions-${Date.now().toString(36)}`;
    const created = open(topic, 3);
    await created.setup();
    await created.publish([{ key: 'k', value: 'v' }]);
    // The same topic, now configured with another count (or grown under it): copies of one event
    // would be routed to different partitions.
    const changed = open(topic, 4);
    try {
      await expect(changed.verify()).rejects.toThrow(/has 3 partitions but KAFKA_PARTITIONS is 4/);
      await expect(changed.setup()).rejects.toThrow(/has 3 partitions/);
      await expect(changed.publish([{ key: 'k', value: 'v2' }])).rejects.toThrow(/has 3 partitions/);
      await expect(created.verify()).resolves.toBeUndefined();
      expect(await created.lag('nobody')).toBe(1); // the refused publish wrote nothing
    } finally {
      await changed.close();
      await created.close();
    }
  });
});

describe('kafka: a handler that throws a TypeError', () => {
  it('gets its batch again instead of stopping the consumer for good', async () => {
    const topic = `type-error-${Date.now().toString(36)}`;
    const log = createKafkaLog(
      { brokers: broker.brokers, topic, clientId: 'type-error', partitions: 1, sessionTimeoutMs: 2_000 },
      pino({ level: 'silent' }),
    );
    await log.setup();
    await log.publish([{ key: 'k', value: 'v' }]);
    let failures = 0;
    let handled = 0;
    let crashed: unknown;
    const sub = await log.subscribe(
      { group: `${topic}-group`, consumer: 'c', maxBatchSize: 10, maxWaitMs: 20 },
      async (records) => {
        if (failures < 2) {
          failures += 1;
          throw new TypeError('a bug, or a client library surprise');
        }
        handled += records.length;
      },
    );
    sub.done.catch((err: unknown) => {
      crashed = err;
    });
    try {
      await eventually(async () => handled === 1 || crashed !== undefined, 'the batch to be handled', 30_000);
      expect(crashed).toBeUndefined();
      expect(failures).toBe(2);
    } finally {
      await sub.stop();
      await log.close();
    }
  });
});

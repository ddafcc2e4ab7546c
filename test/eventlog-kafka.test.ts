import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createKafkaLog } from '../src/eventlog/kafka.ts';
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

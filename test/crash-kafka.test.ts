import { afterAll, beforeAll } from 'vitest';
import { sinkChaosSuite } from './support/chaos.ts';
import { type KafkaTestBroker, startKafkaTestBroker } from './support/kafka-broker/index.ts';

let broker: KafkaTestBroker;
beforeAll(async () => {
  // Kafka's own minimum session timeout is 6 s; the test broker allows less to keep this quick.
  broker = await startKafkaTestBroker({ autoCreateTopics: false, minSessionTimeoutMs: 1_000 });
});
afterAll(() => broker.close());

sinkChaosSuite('kafka (two sink processes in one group over the in-repo broker)', {
  env: async () => ({
    EVENT_LOG: 'kafka',
    KAFKA_BROKERS: broker.brokers.join(','),
    KAFKA_TOPIC: `chaos-${Date.now().toString(36)}`,
    KAFKA_PARTITIONS: '4',
  }),
  claimIdleMs: 2_000,
});

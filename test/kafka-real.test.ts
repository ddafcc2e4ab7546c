import { spawnSync } from 'node:child_process';
import type { StartedKafkaContainer } from '@testcontainers/kafka';
import { pino } from 'pino';
import { afterAll, beforeAll, describe } from 'vitest';
import { createKafkaLog } from '../src/eventlog/kafka.ts';
import { sinkChaosSuite } from './support/chaos.ts';
import { eventLogContract } from './support/eventlog-contract.ts';

/**
 * The same suites as test/eventlog-kafka.test.ts and test/crash-kafka.test.ts, against a real
 * Kafka broker in Docker (testcontainers). Machines without a Docker engine skip them, saying so;
 * the in-repo test broker covers the same logic there.
 */
const docker = spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
if (!docker) {
  console.warn('test/kafka-real.test.ts: not run: no Docker engine answers `docker info` on this machine');
}

describe.skipIf(!docker)('against real Kafka (testcontainers)', () => {
  let kafka: StartedKafkaContainer;
  let brokers: string;
  beforeAll(async () => {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    kafka = await new KafkaContainer('confluentinc/cp-kafka:7.7.1').withKraft().start();
    brokers = `${kafka.getHost()}:${kafka.getMappedPort(9093)}`;
  }, 300_000);
  afterAll(async () => {
    await kafka?.stop();
  });

  eventLogContract('real kafka', async (target) =>
    createKafkaLog(
      { brokers: [brokers], topic: target, clientId: 'contract', partitions: 3, sessionTimeoutMs: 6_000 },
      pino({ level: 'silent' }),
    ),
  );

  sinkChaosSuite('real kafka', {
    env: async () => ({
      EVENT_LOG: 'kafka',
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC: `chaos-${Date.now().toString(36)}`,
    }),
    claimIdleMs: 6_000,
  });
});

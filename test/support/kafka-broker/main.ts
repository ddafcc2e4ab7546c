/**
 * `npm run kafka:local`: the in-memory test broker on port 9092 (or KAFKA_TEST_BROKER_PORT), for
 * running Meterline with KAFKA_BROKERS pointing at it where no real Kafka can run. Data lives in
 * memory until the process stops. KAFKA_TEST_BROKER_DEBUG=1 prints every request.
 */
import { startKafkaTestBroker } from './index.ts';

const port = Number(process.env.KAFKA_TEST_BROKER_PORT ?? 9092);
const broker = await startKafkaTestBroker({
  port,
  host: process.env.KAFKA_TEST_BROKER_HOST ?? '127.0.0.1',
  log: process.env.KAFKA_TEST_BROKER_DEBUG === '1' ? (line) => console.log(line) : undefined,
});
console.log(`Kafka test broker listening on ${broker.brokers.join(',')} (in memory; Ctrl-C to stop)`);

const stop = async () => {
  await broker.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

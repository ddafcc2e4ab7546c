import {
  type Admin,
  type Consumer,
  type ICustomPartitioner,
  type Kafka,
  Kafka as KafkaClient,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import { withTimeout } from '../lib/time.ts';
import {
  type BatchContext,
  type EventLog,
  LeaseLostError,
  type LogMessage,
  type SubscribeOptions,
  type Subscription,
} from './event-log.ts';

export type KafkaLogOptions = {
  brokers: string[];
  topic: string;
  clientId: string;
  partitions: number;
  /** A consumer silent this long is dead and its partitions move (Kafka's minimum is 6 s). */
  sessionTimeoutMs: number;
};

/**
 * Kafka transport. The producer is idempotent with acks from all in-sync replicas; messages are
 * keyed by event identity, so copies of one event share a partition and so a sink consumer.
 * Offsets are committed by hand, after the handler (the ClickHouse insert) resolved.
 */
export function createKafkaLog(options: KafkaLogOptions, logger: Logger): EventLog {
  const kafka: Kafka = new KafkaClient({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => logger.warn({ kafka: entry.log }, entry.log.message),
  });
  let producer: Promise<Producer> | undefined;
  let admin: Promise<Admin> | undefined;
  const consumers = new Set<Consumer>();

  const getProducer = () => {
    producer ??= (async () => {
      // The Java client's murmur2 partitioner: a key lands where other Kafka clients would put it.
      const p = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: fixedCountPartitioner(options.partitions),
      });
      await p.connect();
      return p;
    })().catch((err) => {
      producer = undefined;
      throw err;
    });
    return producer;
  };
  const getAdmin = () => {
    admin ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      return a;
    })().catch((err) => {
      admin = undefined;
      throw err;
    });
    return admin;
  };

  async function verify() {
    const a = await getAdmin();
    const { topics } = await a.fetchTopicMetadata({ topics: [options.topic] });
    const count = topics[0]?.partitions.length ?? 0;
    if (count !== options.partitions) throw partitionCountError(options.topic, count, options.partitions);
  }

  return {
    kind: 'kafka',

    async setup() {
      const a = await getAdmin();
      const existing = await a.listTopics();
      if (!existing.includes(options.topic)) {
        await a.createTopics({ topics: [{ topic: options.topic, numPartitions: options.partitions }] });
      }
      await verify();
    },

    verify,

    async publish(messages: readonly LogMessage[]) {
      if (messages.length === 0) return;
      const p = await getProducer();
      await p.send({
        topic: options.topic,
        acks: -1,
        messages: messages.map((m) => ({ key: m.key, value: m.value })),
      });
    },

    async subscribe(opts: SubscribeOptions, handle): Promise<Subscription> {
      const consumer = kafka.consumer({
        groupId: opts.group,
        maxWaitTimeInMs: opts.maxWaitMs,
        allowAutoTopicCreation: false,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: Math.max(1_000, Math.floor(options.sessionTimeoutMs / 3)),
      });
      consumers.add(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      let resolveDone: () => void = () => undefined;
      let rejectDone: (err: unknown) => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => {
        resolveDone = resolve;
        rejectDone = reject;
      });
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) rejectDone(event.payload.error);
      });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({
          batch,
          heartbeat,
          isRunning,
          isStale,
          resolveOffset,
          commitOffsetsIfNecessary,
        }) => {
          // A consumer that lost the partition in a rebalance stops writing. Kafka needs no stronger
          // fence: the new owner starts from the last commit and replays the same messages in the
          // same order, so whatever both write is the same first copy of each event.
          const context: BatchContext = {
            async writeGuard() {
              if (!isRunning() || isStale())
                throw new LeaseLostError('the partition moved to another consumer');
              await heartbeat();
              return undefined;
            },
          };
          for (let start = 0; start < batch.messages.length; start += opts.maxBatchSize) {
            if (!isRunning() || isStale()) return;
            const slice = batch.messages.slice(start, start + opts.maxBatchSize);
            await handle(
              slice.map((m) => ({
                key: m.key?.toString('utf8') ?? '',
                value: m.value?.toString('utf8') ?? '',
                position: `${batch.partition}:${m.offset}`,
              })),
              context,
            ).catch((err: unknown) => {
              throw retriable(err);
            });
            const last = slice[slice.length - 1];
            if (!last) continue;
            // resolveOffset moves the fetch position; the commit makes it survive a restart. The
            // batch's own commit path still works while stop() is disconnecting the consumer.
            resolveOffset(last.offset);
            const offset = (BigInt(last.offset) + 1n).toString();
            await commitOffsetsIfNecessary({
              topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset }] }],
            });
            await heartbeat();
          }
        },
      });
      return {
        done,
        async stop() {
          await consumer.disconnect();
          consumers.delete(consumer);
          resolveDone();
        },
      };
    },

    async lag(group: string) {
      const a = await getAdmin();
      const [committed, latest] = await Promise.all([
        a.fetchOffsets({ groupId: group, topics: [options.topic] }),
        a.fetchTopicOffsets(options.topic),
      ]);
      const byPartition = new Map(
        (committed[0]?.partitions ?? []).map((p) => [
          p.partition,
          BigInt(p.offset === '-1' ? '0' : p.offset),
        ]),
      );
      let lag = 0n;
      for (const p of latest) {
        const start = byPartition.get(p.partition) ?? BigInt(p.low);
        lag += BigInt(p.high) - (start > BigInt(p.low) ? start : BigInt(p.low));
      }
      return Number(lag);
    },

    async ping() {
      const a = await getAdmin();
      await a.fetchTopicMetadata({ topics: [options.topic] });
    },

    async close() {
      // Bounded: a broker that stopped answering must not hold a shutdown forever.
      const closing = [
        ...[...consumers].map((c) => c.disconnect()),
        producer?.then((p) => p.disconnect()),
        admin?.then((a) => a.disconnect()),
      ];
      await withTimeout(Promise.allSettled(closing), 10_000).catch((err) =>
        logger.warn({ err }, 'kafka clients did not disconnect in time'),
      );
    },
  };
}

function partitionCountError(topic: string, actual: number, expected: number): Error {
  return new Error(
    `Kafka topic ${topic} has ${actual} partitions but KAFKA_PARTITIONS is ${expected}. Copies of one event ` +
      'must land on one partition, and a changed partition count sends new copies elsewhere; to change ' +
      'it, drain the topic and move to a new one (KAFKA_TOPIC).',
  );
}

/**
 * The Java client's murmur2 partitioner (a key lands where other Kafka clients would put it), but
 * only while the topic has the partition count Meterline was configured with: if partitions were
 * added under a running api, publishing fails (503) instead of routing copies of an event apart.
 */
function fixedCountPartitioner(expected: number): ICustomPartitioner {
  return () => {
    const partition = Partitioners.DefaultPartitioner();
    return (args) => {
      if (args.partitionMetadata.length !== expected) {
        throw partitionCountError(args.topic, args.partitionMetadata.length, expected);
      }
      return partition(args);
    };
  };
}

/**
 * kafkajs stops a consumer for good (no restart) when a handler throws a RangeError, TypeError,
 * ReferenceError or SyntaxError. A batch that failed is retried like any other failure (the sink
 * sets aside what is the data's fault), so such errors travel as plain ones.
 */
function retriable(err: unknown): unknown {
  const unrecoverable = ['RangeError', 'ReferenceError', 'SyntaxError', 'TypeError'];
  return err instanceof Error && unrecoverable.includes(err.name)
    ? new Error(err.message, { cause: err })
    : err;
}

/**
 * An in-memory, single-node Kafka broker speaking enough of the wire protocol for the unmodified
 * kafkajs 2.2.4 client: its producer (idempotent, gzip), consumer groups and the admin calls our
 * transport (src/eventlog/kafka.ts) makes. For tests and `npm run kafka:local` where no real
 * broker can run; it is not a Kafka implementation to deploy.
 *
 * Implemented APIs, one version each (the highest kafkajs 2.2.4 speaks; ApiVersions advertises
 * exactly these, so kafkajs negotiates them):
 *
 *   key  API              version   module
 *    0   Produce          7         apis/produce.ts         record batch v2, none or gzip; idempotence
 *    1   Fetch            11        apis/fetch.ts           max_wait / min_bytes; no fetch sessions
 *    2   ListOffsets      3         apis/list-offsets.ts    latest -1, earliest -2, by timestamp
 *    3   Metadata         6         apis/metadata.ts        auto-creation when broker and client allow
 *    8   OffsetCommit     5         apis/offset-commit.ts
 *    9   OffsetFetch      4         apis/offset-fetch.ts
 *   10   FindCoordinator  2         apis/find-coordinator.ts
 *   11   JoinGroup        5         apis/join-group.ts      MEMBER_ID_REQUIRED handshake (KIP-394)
 *   12   Heartbeat        3         apis/heartbeat.ts
 *   13   LeaveGroup       3         apis/leave-group.ts
 *   14   SyncGroup        3         apis/sync-group.ts
 *   15   DescribeGroups   2         apis/describe-groups.ts
 *   18   ApiVersions      0-2       apis/api-versions.ts
 *   19   CreateTopics     3         apis/create-topics.ts
 *   22   InitProducerId   1         apis/init-producer-id.ts idempotent producers only
 *
 * Around them: protocol/ (reader, writer, error codes), records/ (record batch v2 validation,
 * CRC-32C), log/ (partition logs, producer sequence state, topics), group/coordinator.ts (the
 * consumer group state machine), server.ts (framing and per-connection ordering).
 *
 * Deliberately not implemented: transactions (transactional ids and batches are refused) and the
 * transaction APIs; SASL, TLS and ACLs; more than one broker, replication and leader epochs;
 * compression other than gzip (snappy, lz4, zstd get UNSUPPORTED_COMPRESSION_TYPE); retention,
 * compaction and DeleteRecords (the log start offset stays 0); DeleteTopics, CreatePartitions,
 * ListGroups, DeleteGroups and configs; static group membership; incremental fetch sessions;
 * quotas; group.initial.rebalance.delay.ms (it is 0); persistence (everything is lost on close).
 */
import { createServer, type Socket } from 'node:net';
import { GroupCoordinator } from './group/coordinator.ts';
import { TopicStore } from './log/topic-store.ts';
import { serveConnection } from './server.ts';
import type { BrokerState } from './state.ts';

export type KafkaTestBrokerOptions = {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on and the host advertised to clients; default 127.0.0.1. */
  host?: string;
  /** Create unknown topics on Metadata requests that allow it (Kafka's auto.create.topics.enable); default true. */
  autoCreateTopics?: boolean;
  /** Partitions of auto-created topics and of CreateTopics with num_partitions -1; default 3. */
  defaultPartitions?: number;
  /** group.min.session.timeout.ms and group.max.session.timeout.ms; default 6000 and 1800000, as Kafka. */
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** Receives one line per request and per dropped connection. */
  log?: (message: string) => void;
};

export type KafkaTestBroker = {
  port: number;
  /** For `new Kafka({ brokers })`. */
  brokers: string[];
  close(): Promise<void>;
  /** Names of the existing topics, sorted. */
  topics(): string[];
  /** Next offset of each partition of a topic (empty when the topic does not exist). */
  highWatermarks(topic: string): number[];
};

export async function startKafkaTestBroker(options: KafkaTestBrokerOptions = {}): Promise<KafkaTestBroker> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => undefined);
  const groups = new GroupCoordinator({
    minSessionTimeoutMs: options.minSessionTimeoutMs ?? 6000,
    maxSessionTimeoutMs: options.maxSessionTimeoutMs ?? 1_800_000,
  });
  const state: BrokerState = {
    config: {
      nodeId: 0,
      host: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host,
      port: 0,
      clusterId: 'meterline-test-broker',
      autoCreateTopics: options.autoCreateTopics ?? true,
      defaultPartitions: options.defaultPartitions ?? 3,
    },
    topics: new TopicStore(),
    groups,
    nextProducerId: 1000,
  };

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    serveConnection(socket, state, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker is not listening on TCP');
  state.config.port = address.port;

  return {
    port: address.port,
    brokers: [`${state.config.host}:${address.port}`],
    topics: () => state.topics.names(),
    highWatermarks: (topic) => state.topics.get(topic)?.partitions.map((p) => p.highWatermark) ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        groups.close();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  type Admin,
  CompressionTypes,
  type Consumer,
  Kafka,
  logLevel,
  type Message,
  type Producer,
} from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaTestBroker, startKafkaTestBroker } from './support/kafka-broker/index.ts';
import { crc32c } from './support/kafka-broker/records/crc32c.ts';
import { parseBatch, withBaseOffset } from './support/kafka-broker/records/record-batch.ts';
import { connectWire, type WireClient } from './support/kafka-broker/wire-client.ts';

// The broker's own tests, with plain kafkajs (and, below the client, kafkajs's protocol encoders).

const GROUP_TIMINGS = {
  sessionTimeout: 6000,
  heartbeatInterval: 500,
  rebalanceTimeout: 5000,
  maxWaitTimeInMs: 100,
};

let broker: KafkaTestBroker;
let admin: Admin;
let producer: Producer;
let wire: WireClient;
const requestsSeen = new Set<string>();
const disconnectAtEnd: { disconnect(): Promise<void> }[] = [];
const children: ChildProcess[] = [];
let counter = 0;
const fresh = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++counter}`;

const kafka = (clientId: string, retries = 5) =>
  new Kafka({
    clientId,
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries },
  });

beforeAll(async () => {
  broker = await startKafkaTestBroker({
    autoCreateTopics: false,
    log: (line) => {
      const request = / (\w+ v\d+) #\d+$/.exec(line)?.[1];
      if (request) requestsSeen.add(request);
    },
  });
  admin = kafka('admin').admin();
  await admin.connect();
  producer = kafka('producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  wire = await connectWire(broker.port);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const client of disconnectAtEnd.reverse()) await client.disconnect().catch(() => undefined);
  await producer?.disconnect();
  await admin?.disconnect();
  wire?.close();
  await broker?.close();
});

async function createTopic(partitions: number): Promise<string> {
  const topic = fresh('topic');
  expect(await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] })).toBe(true);
  return topic;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(25);
  }
}

type Delivery = {
  consumer: string;
  partition: number;
  offset: string;
  key: string;
  value: string;
  headers: string;
};

type RunningConsumer = {
  consumer: Consumer;
  deliveries: Delivery[];
  assignments: number[][];
  latest(): number[];
};

/** A group member that takes every batch and commits it by hand once it is recorded. */
async function startConsumer(name: string, groupId: string, topic: string, into: Delivery[]) {
  const consumer = kafka(name).consumer({ groupId, ...GROUP_TIMINGS });
  disconnectAtEnd.push(consumer);
  const assignments: number[][] = [];
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    assignments.push([...(event.payload.memberAssignment[topic] ?? [])].sort());
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const deliveries: Delivery[] = [];
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const headers = Object.entries(m.headers ?? {})
          .map(([k, v]) => `${k}=${v?.toString()}`)
          .join(',');
        const delivery = {
          consumer: name,
          partition: batch.partition,
          offset: m.offset,
          key: m.key?.toString() ?? '',
          value: m.value?.toString() ?? '',
          headers,
        };
        deliveries.push(delivery);
        into.push(delivery);
      }
      const last = batch.messages.at(-1);
      if (last) {
        const offset = (BigInt(last.offset) + 1n).toString();
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset }]);
      }
    },
  });
  const running: RunningConsumer = {
    consumer,
    deliveries,
    assignments,
    latest: () => assignments.at(-1) ?? [],
  };
  return running;
}

const keyed = (prefix: string, count: number): Message[] =>
  Array.from({ length: count }, (_, i) => ({ key: `${prefix}-${i}`, value: `value of ${prefix}-${i}` }));

/** Each key delivered exactly once, and nothing else. */
function expectEachOnce(deliveries: Delivery[], keys: string[]) {
  expect(deliveries.map((d) => d.key).sort()).toEqual([...keys].sort());
}

/** The members' latest assignments split all partitions between them, none empty. */
const splitsAll = (members: RunningConsumer[], partitions: number) => {
  const all = members.flatMap((m) => m.latest());
  return (
    members.every((m) => m.latest().length > 0) &&
    all.length === partitions &&
    new Set(all).size === partitions
  );
};

describe('kafka test broker', () => {
  it('produces with an idempotent producer, gzip and uncompressed, and a group consumes each message once, intact', async () => {
    const topic = await createTopic(3);
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })).toBe(false); // already exists
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(topics[0]?.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);

    const plain = Array.from({ length: 30 }, (_, i) => ({
      key: `plain-${i}`,
      value: `plain value ${i} ✓`,
      headers: { source: 'test', n: String(i) },
    }));
    const zipped = keyed('gzip', 30);
    await producer.send({ topic, acks: -1, messages: plain });
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: zipped });
    const watermarks = broker.highWatermarks(topic);
    expect(watermarks.every((hw) => hw > 0)).toBe(true); // keys spread over all partitions
    expect(watermarks.reduce((a, b) => a + b, 0)).toBe(60);

    const seen: Delivery[] = [];
    await startConsumer('only', fresh('group'), topic, seen);
    await waitFor('60 messages', () => seen.length >= 60);
    await sleep(300);
    expectEachOnce(
      seen,
      [...plain, ...zipped].map((m) => String(m.key)),
    );
    const byKey = new Map(seen.map((d) => [d.key, d]));
    for (const m of plain) {
      expect(byKey.get(m.key)).toMatchObject({ value: m.value, headers: `source=test,n=${m.headers.n}` });
    }
    for (const m of zipped) expect(byKey.get(String(m.key))?.value).toBe(m.value);

    // kafkajs negotiated the one version of each API the broker advertises.
    const apiVersions = await wire.send<{
      apiVersions: { apiKey: number; minVersion: number; maxVersion: number }[];
    }>('apiVersions', 2);
    expect(apiVersions.apiVersions.find((v) => v.apiKey === 0)).toEqual({
      apiKey: 0,
      minVersion: 7,
      maxVersion: 7,
    });
    for (const request of [
      'ApiVersions v2',
      'Metadata v6',
      'CreateTopics v3',
      'InitProducerId v1',
      'Produce v7',
      'FindCoordinator v2',
      'JoinGroup v5',
      'SyncGroup v3',
      'OffsetFetch v4',
      'ListOffsets v3',
      'Fetch v11',
      'OffsetCommit v5',
    ]) {
      expect(requestsSeen).toContain(request);
    }
  });

  it('resumes a group after its last manual commit', async () => {
    const topic = await createTopic(1);
    const groupId = fresh('group');
    await producer.send({ topic, messages: keyed('m', 10) });

    const first = kafka('first').consumer({ groupId, ...GROUP_TIMINGS });
    disconnectAtEnd.push(first);
    const firstSeen: string[] = [];
    await first.connect();
    await first.subscribe({ topic, fromBeginning: true });
    await first.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        firstSeen.push(String(message.key));
      },
    });
    await waitFor('the first consumer to read all 10', () => firstSeen.length === 10);
    await first.commitOffsets([{ topic, partition: 0, offset: '6' }]); // processed m-0 .. m-5 "for real"
    await first.disconnect();
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([
      { topic, partitions: [{ partition: 0, offset: '6', metadata: null }] },
    ]);

    const seen: Delivery[] = [];
    await startConsumer('second', groupId, topic, seen);
    await waitFor('the rest', () => seen.length >= 4);
    await sleep(300);
    expectEachOnce(seen, ['m-6', 'm-7', 'm-8', 'm-9']);
  });

  it('splits partitions between two members and rebalances when a third joins, each message consumed once', async () => {
    const topic = await createTopic(6);
    const groupId = fresh('group');
    const seen: Delivery[] = [];
    const a = await startConsumer('a', groupId, topic, seen);
    const b = await startConsumer('b', groupId, topic, seen);
    await waitFor('a and b to split the partitions', () => splitsAll([a, b], 6));
    expect(a.latest()).toHaveLength(3);

    const before = keyed('before', 30);
    await producer.send({ topic, messages: before });
    await waitFor('the first 30', () => seen.length >= 30);

    const c = await startConsumer('c', groupId, topic, seen);
    const during = keyed('during', 30);
    for (const m of during) await producer.send({ topic, messages: [m] }); // while the group rebalances
    await waitFor('a, b and c to split the partitions', () => splitsAll([a, b, c], 6));
    expect([a, b, c].map((m) => m.latest().length)).toEqual([2, 2, 2]);
    expect(a.assignments.length).toBeGreaterThanOrEqual(3); // alone, with b, with b and c

    const after = keyed('after', 30);
    await producer.send({ topic, messages: after });
    await waitFor('all 90', () => seen.length >= 90);
    await sleep(300);
    expectEachOnce(
      seen,
      [...before, ...during, ...after].map((m) => String(m.key)),
    );
    // After the rebalance each member reads only its own partitions.
    for (const member of [a, b, c]) {
      const late = member.deliveries.filter((d) => d.key.startsWith('after-')).map((d) => d.partition);
      expect(late.every((p) => member.latest().includes(p))).toBe(true);
    }
    expect(c.deliveries.length).toBeGreaterThan(0);
  });

  it('expires a member that vanished without leaving after its session timeout, and moves its partitions', async () => {
    const topic = await createTopic(2);
    const groupId = fresh('group');
    const seen: Delivery[] = [];
    const survivor = await startConsumer('survivor', groupId, topic, seen);
    await waitFor('the survivor to own both partitions', () => survivor.latest().length === 2);

    // A second member in its own process, killed with SIGKILL: no LeaveGroup, its sockets just close.
    const doomed = spawn(process.execPath, ['--input-type=module', '-e', DOOMED_CONSUMER], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, BROKERS: broker.brokers.join(','), GROUP: groupId, TOPIC: topic, ...GROUP_ENV },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(doomed);
    const doomedAssignments: number[][] = [];
    doomed.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        doomedAssignments.push(JSON.parse(line));
    });
    await waitFor(
      'the doomed member to take a partition',
      () => doomedAssignments.at(-1)?.length === 1 && survivor.latest().length === 1,
    );
    expect((await survivor.consumer.describeGroup()).members).toHaveLength(2);

    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    await once(doomed, 'exit');
    const after = keyed('orphaned', 20);
    await producer.send({ topic, messages: after });

    await waitFor('the survivor to get both partitions back', () => survivor.latest().length === 2, 20_000);
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeGreaterThan(4500); // session timeout 6 s, from the last heartbeat (every 0.5 s)
    expect(tookMs).toBeLessThan(10_000);
    await waitFor('the orphaned messages', () => after.every((m) => seen.some((d) => d.key === m.key)));
    expect(new Set(seen.filter((d) => d.key.startsWith('orphaned-')).map((d) => d.partition))).toEqual(
      new Set([0, 1]),
    );
    expect((await survivor.consumer.describeGroup()).members).toHaveLength(1);
  });

  it('rejects a commit from a stale generation or an unknown member', async () => {
    const topic = await createTopic(1);
    const groupId = fresh('group');
    type JoinResponse = { errorCode: number; generationId: number; memberId: string; leaderId: string };
    const join = (memberId: string) =>
      wire.send<JoinResponse>('joinGroup', 5, {
        groupId,
        sessionTimeout: 6000,
        rebalanceTimeout: 5000,
        memberId,
        protocolType: 'consumer',
        groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from('subscription') }],
      });
    const sync = (memberId: string, generationId: number) =>
      wire.send<{ errorCode: number }>('syncGroup', 3, {
        groupId,
        generationId,
        memberId,
        groupAssignment: [{ memberId, memberAssignment: Buffer.from('everything') }],
      });
    const commit = (memberId: string, generationId: number) =>
      wire
        .send<{ responses: { partitions: { errorCode: number }[] }[] }>('offsetCommit', 5, {
          groupId,
          groupGenerationId: generationId,
          memberId,
          topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }],
        })
        .then((r) => r.responses[0]?.partitions[0]?.errorCode);

    const first = await join('');
    expect(first.errorCode).toBe(79); // MEMBER_ID_REQUIRED, with an id to join with
    const memberId = first.memberId;
    const joined = await join(memberId);
    expect(joined).toMatchObject({ errorCode: 0, memberId, leaderId: memberId });
    expect((await sync(memberId, joined.generationId)).errorCode).toBe(0);

    // The leader rejoining a stable group starts the next generation.
    const rejoined = await join(memberId);
    expect(rejoined.generationId).toBe(joined.generationId + 1);
    expect((await sync(memberId, rejoined.generationId)).errorCode).toBe(0);

    expect(await commit(memberId, joined.generationId)).toBe(22); // ILLEGAL_GENERATION
    expect(await commit('someone-else', rejoined.generationId)).toBe(25); // UNKNOWN_MEMBER_ID
    expect(await commit(memberId, rejoined.generationId)).toBe(0);
    const beat = (generationId: number) =>
      wire.send<{ errorCode: number }>('heartbeat', 3, {
        groupId,
        groupGenerationId: generationId,
        memberId,
      });
    expect((await beat(joined.generationId)).errorCode).toBe(22);
    expect((await beat(rejoined.generationId)).errorCode).toBe(0);
  });

  it('tells members of a rebalance by heartbeat, and drops one that does not rejoin within the rebalance timeout', async () => {
    const groupId = fresh('group');
    const other = await connectWire(broker.port); // a held JoinGroup blocks its connection
    try {
      const joinOn = (client: WireClient, memberId: string) =>
        client.send<{ errorCode: number; generationId: number; memberId: string; members: unknown[] }>(
          'joinGroup',
          5,
          {
            groupId,
            sessionTimeout: 6000,
            rebalanceTimeout: 1000,
            memberId,
            protocolType: 'consumer',
            groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.alloc(0) }],
          },
        );
      const joinFresh = async (client: WireClient) => joinOn(client, (await joinOn(client, '')).memberId);
      const stale = await joinFresh(wire);
      await wire.send('syncGroup', 3, {
        groupId,
        generationId: stale.generationId,
        memberId: stale.memberId,
        groupAssignment: [],
      });
      const beat = () =>
        wire
          .send<{ errorCode: number }>('heartbeat', 3, {
            groupId,
            groupGenerationId: stale.generationId,
            memberId: stale.memberId,
          })
          .then((r) => r.errorCode);
      expect(await beat()).toBe(0);

      const start = Date.now();
      const newcomer = joinFresh(other); // held: the group waits for the first member to rejoin
      await sleep(200);
      expect(await beat()).toBe(27); // REBALANCE_IN_PROGRESS: it should rejoin, and does not
      const joined = await newcomer;
      expect(Date.now() - start).toBeGreaterThanOrEqual(900);
      expect(joined).toMatchObject({ errorCode: 0, generationId: stale.generationId + 1 });
      expect(joined.members).toHaveLength(1); // the leader's view: only itself
      expect(await beat()).toBe(25); // UNKNOWN_MEMBER_ID: it was dropped
    } finally {
      other.close();
    }
  });

  it('rejects an unknown topic when auto-creation is off, and creates it when on', async () => {
    const topic = fresh('missing');
    const metadata = await wire.send<{ topicMetadata: { topicErrorCode: number }[] }>('metadata', 6, {
      topics: [topic],
      allowAutoTopicCreation: true,
    });
    expect(metadata.topicMetadata[0]?.topicErrorCode).toBe(3); // UNKNOWN_TOPIC_OR_PARTITION
    const produced = await wire.send<{ topics: { partitions: { errorCode: number }[] }[] }>('produce', 7, {
      acks: -1,
      timeout: 1000,
      topicData: [{ topic, partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v' }] }] }],
    });
    expect(produced.topics[0]?.partitions[0]?.errorCode).toBe(3);
    const fetched = await wire.send<{ responses: { partitions: { errorCode: number }[] }[] }>('fetch', 11, {
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 1024,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: '0', maxBytes: 1024 }] }],
    });
    expect(fetched.responses[0]?.partitions[0]?.errorCode).toBe(3);

    const impatient = kafka('impatient', 0).producer();
    await impatient.connect();
    await expect(impatient.send({ topic, messages: [{ value: 'x' }] })).rejects.toThrow(/does not host this/);
    await impatient.disconnect();
    expect(broker.topics()).not.toContain(topic);

    const lenient = await startKafkaTestBroker({ autoCreateTopics: true, defaultPartitions: 2 });
    try {
      const client = new Kafka({ clientId: 'auto', brokers: lenient.brokers, logLevel: logLevel.NOTHING });
      const autoProducer = client.producer();
      await autoProducer.connect();
      await autoProducer.send({ topic, messages: [{ key: 'k', value: 'v' }] });
      await autoProducer.disconnect();
      expect(lenient.topics()).toEqual([topic]);
      expect(lenient.highWatermarks(topic).reduce((a, b) => a + b, 0)).toBe(1);
      expect(lenient.highWatermarks(topic)).toHaveLength(2);
    } finally {
      await lenient.close();
    }
  });

  it('rejects an out-of-order producer sequence and acknowledges a retried batch once, at its first offset', async () => {
    const topic = await createTopic(1);
    type ProduceResponse = { topics: { partitions: { errorCode: number; baseOffset: string }[] }[] };
    const init = await wire.send<{ errorCode: number; producerId: string; producerEpoch: number }>(
      'initProducerId',
      1,
      { transactionTimeout: 5000 },
    );
    expect(init).toMatchObject({ errorCode: 0, producerEpoch: 0 });
    const send = (firstSequence: number, keys: string[], producerId = init.producerId) =>
      wire
        .send<ProduceResponse>('produce', 7, {
          acks: -1,
          timeout: 1000,
          producerId,
          producerEpoch: 0,
          topicData: [
            {
              topic,
              partitions: [
                { partition: 0, firstSequence, messages: keys.map((key) => ({ key, value: key })) },
              ],
            },
          ],
        })
        .then((r) => r.topics[0]?.partitions[0]);

    expect(await send(0, ['a', 'b', 'c'])).toMatchObject({ errorCode: 0, baseOffset: '0' });
    expect(await send(0, ['a', 'b', 'c'])).toMatchObject({ errorCode: 0, baseOffset: '0' }); // a retry
    expect(broker.highWatermarks(topic)).toEqual([3]);
    expect((await send(5, ['gap']))?.errorCode).toBe(45); // OUT_OF_ORDER_SEQUENCE_NUMBER
    expect((await send(1, ['b', 'c']))?.errorCode).toBe(45);
    expect(await send(3, ['d'])).toMatchObject({ errorCode: 0, baseOffset: '3' });
    expect((await send(1, ['x']))?.errorCode).toBe(45); // a new producer id must start at 0
    expect(broker.highWatermarks(topic)).toEqual([4]);

    const fetched = await wire.send<{
      responses: { partitions: { messages: { key: Buffer; offset: string }[] }[] }[];
    }>('fetch', 11, {
      maxWaitTime: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: '0', maxBytes: 1 << 20 }] }],
    });
    const messages = fetched.responses[0]?.partitions[0]?.messages ?? [];
    expect(messages.map((m) => `${m.offset}:${m.key.toString()}`)).toEqual(['0:a', '1:b', '2:c', '3:d']);
  });

  it('holds an empty fetch for max wait time, and answers as soon as data arrives', async () => {
    const topic = await createTopic(1);
    const fetch = (maxWaitTime: number) =>
      wire.send<{ responses: { partitions: { messages: unknown[] }[] }[] }>('fetch', 11, {
        maxWaitTime,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: '0', maxBytes: 1 << 20 }] }],
      });
    let start = Date.now();
    const empty = await fetch(500);
    const emptyMs = Date.now() - start;
    expect(empty.responses[0]?.partitions[0]?.messages).toEqual([]);
    expect(emptyMs).toBeGreaterThanOrEqual(480);
    expect(emptyMs).toBeLessThan(1500);

    start = Date.now();
    const waiting = fetch(5000);
    await sleep(200);
    await producer.send({ topic, messages: [{ key: 'k', value: 'wake up' }] });
    const woken = await waiting;
    const wokenMs = Date.now() - start;
    expect(woken.responses[0]?.partitions[0]?.messages).toHaveLength(1);
    expect(wokenMs).toBeGreaterThanOrEqual(200);
    expect(wokenMs).toBeLessThan(1500);
  });

  it('checks the CRC-32C of a produced batch and keeps it valid when assigning offsets', async () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283); // the standard check value
    const require = createRequire(import.meta.url);
    const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => object;
    const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
      RecordBatch(o: object): Promise<{ buffer: Buffer }>;
    };
    for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
      const records = ['a', 'b'].map((key, offsetDelta) => Record({ key, value: key, offsetDelta }));
      const bytes = (await RecordBatch({ compression, records, lastOffsetDelta: 1 })).buffer;
      const parsed = await parseBatch(bytes);
      expect(parsed).toMatchObject({
        recordCount: 2,
        records: [{ key: Buffer.from('a') }, { key: Buffer.from('b') }],
      });

      const stored = withBaseOffset(bytes, 42);
      expect(stored.readBigInt64BE(0)).toBe(42n);
      expect(stored.readUInt32BE(17)).toBe(crc32c(stored.subarray(21)));

      const corrupted = Buffer.from(bytes);
      corrupted[corrupted.length - 1] = (corrupted.at(-1) ?? 0) ^ 0xff;
      expect(await parseBatch(corrupted)).toMatchObject({ error: 2 }); // CORRUPT_MESSAGE
    }
  });

  it('lists earliest, latest and by-timestamp offsets', async () => {
    const topic = await createTopic(2);
    const t0 = Date.now() - 60_000;
    const at = (partition: number, count: number): Message[] =>
      Array.from({ length: count }, (_, i) => ({
        partition,
        value: `${i}`,
        timestamp: String(t0 + i * 1000),
      }));
    await producer.send({ topic, messages: [...at(0, 3), ...at(1, 5)] });

    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.sort((x, y) => x.partition - y.partition)).toEqual([
      { partition: 0, offset: '3', high: '3', low: '0' },
      { partition: 1, offset: '5', high: '5', low: '0' },
    ]);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 2500);
    expect(byTime.sort((x, y) => x.partition - y.partition)).toEqual([
      { partition: 0, offset: '3' }, // no record that late: the high watermark
      { partition: 1, offset: '3' },
    ]);
    const listed = await wire.send<{ responses: { partitions: { partition: number; offset: string }[] }[] }>(
      'listOffsets',
      3,
      {
        topics: [
          {
            topic,
            partitions: [
              { partition: 1, timestamp: -2 },
              { partition: 1, timestamp: -1 },
            ],
          },
        ],
      },
    );
    expect(listed.responses[0]?.partitions.map((p) => p.offset)).toEqual(['0', '5']);
  });
});

const GROUP_ENV = Object.fromEntries(Object.entries(GROUP_TIMINGS).map(([k, v]) => [k, String(v)]));

/** A consumer in a child process that prints each assignment it gets, as JSON, one per line. */
const DOOMED_CONSUMER = `
import { Kafka, logLevel } from 'kafkajs';
const env = process.env;
const kafka = new Kafka({ clientId: 'doomed', brokers: env.BROKERS.split(','), logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({
  groupId: env.GROUP,
  sessionTimeout: Number(env.sessionTimeout),
  heartbeatInterval: Number(env.heartbeatInterval),
  rebalanceTimeout: Number(env.rebalanceTimeout),
  maxWaitTimeInMs: Number(env.maxWaitTimeInMs),
});
consumer.on(consumer.events.GROUP_JOIN, (e) => console.log(JSON.stringify(e.payload.memberAssignment[env.TOPIC] ?? [])));
await consumer.connect();
await consumer.subscribe({ topic: env.TOPIC, fromBeginning: true });
await consumer.run({ eachMessage: async () => {} });
`;

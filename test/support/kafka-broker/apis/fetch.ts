import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import type { BrokerState } from '../state.ts';
import { type ApiHandler, ApiKey } from './types.ts';

type FetchPartition = { partition: number; fetchOffset: number; maxBytes: number };
type FetchTopic = { name: string; partitions: FetchPartition[] };
type PartitionData = {
  partition: number;
  error: ErrorCode;
  highWatermark: number;
  logStartOffset: number;
  batches: Buffer[];
};

/**
 * Fetch v11. Returns whole stored batches from the one holding fetch_offset (the consumer drops
 * records before its offset). When fewer than min_bytes are available the request is held until
 * an append brings enough, max_wait_ms passes, or the connection closes; an error answers at once.
 * Fetch sessions (KIP-227) are declined with session id 0, so every fetch is a full fetch.
 */
export const fetch: ApiHandler = {
  key: ApiKey.Fetch,
  name: 'Fetch',
  minVersion: 11,
  maxVersion: 11,
  async handle(request, { broker, closed }) {
    request.int32(); // replica_id: -1 for consumers
    const maxWaitMs = request.int32();
    const minBytes = request.int32();
    const maxBytes = request.int32();
    const isolationLevel = request.int8();
    request.int32(); // session_id
    request.int32(); // session_epoch
    const topics = request.array(
      (t): FetchTopic => ({
        name: t.string(),
        partitions: t.array((p) => {
          const partition = p.int32();
          p.int32(); // current_leader_epoch
          const fetchOffset = p.int64Number();
          p.int64(); // log_start_offset: only followers send one
          return { partition, fetchOffset, maxBytes: p.int32() };
        }),
      }),
    );
    request.array((t) => [t.string(), t.array((p) => p.int32())]); // forgotten_topics_data
    request.string(); // rack_id

    const deadline = Date.now() + maxWaitMs;
    let read = readAll(broker, topics, maxBytes);
    while (read.bytes < minBytes && !read.failed && !closed.aborted && Date.now() < deadline) {
      await broker.topics.waitForAppend(deadline - Date.now(), closed);
      read = readAll(broker, topics, maxBytes);
    }

    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(ErrorCode.NONE)
      .int32(0) // session_id: no session
      .array(read.topics, (w, t) =>
        w.string(t.name).array(t.partitions, (pw, p) => {
          pw.int32(p.partition)
            .int16(p.error)
            .int64(p.highWatermark)
            .int64(p.highWatermark) // last_stable_offset: no transactions
            .int64(p.logStartOffset)
            .array(isolationLevel === 1 ? [] : null, () => undefined) // aborted_transactions
            .int32(-1) // preferred_read_replica
            .int32(p.batches.reduce((n, b) => n + b.length, 0));
          for (const batch of p.batches) pw.raw(batch);
        }),
      );
  },
};

function readAll(broker: BrokerState, topics: FetchTopic[], maxBytes: number) {
  let bytes = 0;
  let failed = false;
  const result = topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map(({ partition, fetchOffset, maxBytes: partitionMaxBytes }): PartitionData => {
      const log = broker.topics.partition(t.name, partition);
      if (!log) {
        failed = true;
        const error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        return { partition, error, highWatermark: -1, logStartOffset: -1, batches: [] };
      }
      const answer = { partition, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
      if (fetchOffset < log.logStartOffset || fetchOffset > log.highWatermark) {
        failed = true;
        return { ...answer, error: ErrorCode.OFFSET_OUT_OF_RANGE, batches: [] };
      }
      // Only the response's first batch may exceed the limits (KIP-74).
      const batches = log.read(fetchOffset, Math.min(partitionMaxBytes, maxBytes - bytes), bytes === 0);
      bytes += batches.reduce((n, b) => n + b.length, 0);
      return { ...answer, error: ErrorCode.NONE, batches };
    }),
  }));
  return { topics: result, bytes, failed };
}

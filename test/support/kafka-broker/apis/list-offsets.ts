import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

const LATEST = -1;
const EARLIEST = -2;

/**
 * ListOffsets v3: timestamp -1 is the high watermark (also the last stable offset, as there are no
 * transactions), -2 the log start offset, and any other timestamp the first record at or after it
 * (offset -1 when none is).
 */
export const listOffsets: ApiHandler = {
  key: ApiKey.ListOffsets,
  name: 'ListOffsets',
  minVersion: 3,
  maxVersion: 3,
  handle(request, { broker }) {
    request.int32(); // replica_id
    request.int8(); // isolation_level
    const topics = request.array((t) => ({
      name: t.string(),
      partitions: t.array((p) => ({ partition: p.int32(), timestamp: p.int64Number() })),
    }));
    const answers = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map(({ partition, timestamp }) => {
        const log = broker.topics.partition(t.name, partition);
        if (!log)
          return { partition, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, timestamp: -1, offset: -1 };
        if (timestamp === LATEST)
          return { partition, error: ErrorCode.NONE, timestamp: -1, offset: log.highWatermark };
        if (timestamp === EARLIEST) {
          return { partition, error: ErrorCode.NONE, timestamp: -1, offset: log.logStartOffset };
        }
        return { partition, error: ErrorCode.NONE, ...log.offsetForTimestamp(timestamp) };
      }),
    }));
    return new Writer()
      .int32(0) // throttle_time_ms
      .array(answers, (w, t) =>
        w
          .string(t.name)
          .array(t.partitions, (pw, p) =>
            pw.int32(p.partition).int16(p.error).int64(p.timestamp).int64(p.offset),
          ),
      );
  },
};

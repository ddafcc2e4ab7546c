import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/** OffsetFetch v4: -1 for partitions without a commit; a null topic list means all committed. */
export const offsetFetch: ApiHandler = {
  key: ApiKey.OffsetFetch,
  name: 'OffsetFetch',
  minVersion: 4,
  maxVersion: 4,
  handle(request, { broker }) {
    const groupId = request.string();
    const topics =
      request.nullableArray((t) => ({ topic: t.string(), partitions: t.array((p) => p.int32()) })) ??
      broker.groups.committedTopics(groupId);
    return new Writer()
      .int32(0) // throttle_time_ms
      .array(topics, (w, t) =>
        w.string(t.topic).array(t.partitions, (pw, partition) => {
          const committed = broker.groups.committedOffset(groupId, t.topic, partition);
          pw.int32(partition)
            .int64(committed?.offset ?? -1)
            .string(committed?.metadata ?? '')
            .int16(ErrorCode.NONE);
        }),
      )
      .int16(ErrorCode.NONE);
  },
};

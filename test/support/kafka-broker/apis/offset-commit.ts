import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * OffsetCommit v5. The group check (member of the current generation, or a simple commit to an
 * empty group) applies to every partition; see GroupCoordinator.validateCommit.
 */
export const offsetCommit: ApiHandler = {
  key: ApiKey.OffsetCommit,
  name: 'OffsetCommit',
  minVersion: 5,
  maxVersion: 5,
  handle(request, { broker }) {
    const groupId = request.string();
    const generationId = request.int32();
    const memberId = request.string();
    const topics = request.array((t) => ({
      name: t.string(),
      partitions: t.array((p) => ({
        partition: p.int32(),
        offset: p.int64Number(),
        metadata: p.nullableString(),
      })),
    }));
    const groupError = broker.groups.validateCommit(groupId, generationId, memberId);
    const answers = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map(({ partition, offset, metadata }) => {
        if (groupError !== ErrorCode.NONE) return { partition, error: groupError };
        if (!broker.topics.partition(t.name, partition)) {
          return { partition, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        }
        broker.groups.storeOffset(groupId, t.name, partition, offset, metadata);
        return { partition, error: ErrorCode.NONE };
      }),
    }));
    return new Writer()
      .int32(0) // throttle_time_ms
      .array(answers, (w, t) =>
        w.string(t.name).array(t.partitions, (pw, p) => pw.int32(p.partition).int16(p.error)),
      );
  },
};

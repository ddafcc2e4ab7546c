import { isLegalTopicName } from '../log/topic-store.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * Metadata v6. A null topic list means every topic. An unknown topic is created when both the
 * request (allow_auto_topic_creation) and the broker (autoCreateTopics) allow it, and is otherwise
 * answered with UNKNOWN_TOPIC_OR_PARTITION. This single node leads every partition.
 */
export const metadata: ApiHandler = {
  key: ApiKey.Metadata,
  name: 'Metadata',
  minVersion: 6,
  maxVersion: 6,
  handle(request, { broker }) {
    const requested = request.nullableArray((r) => r.string());
    const allowAutoCreate = request.boolean();
    const { topics, config } = broker;
    const answers = (requested ?? topics.names()).map((name) => {
      let topic = topics.get(name);
      if (!topic && !isLegalTopicName(name))
        return { error: ErrorCode.INVALID_TOPIC_EXCEPTION, name, partitions: 0 };
      if (!topic && allowAutoCreate && config.autoCreateTopics)
        topic = topics.create(name, config.defaultPartitions);
      if (!topic) return { error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: 0 };
      return { error: ErrorCode.NONE, name, partitions: topic.partitions.length };
    });
    const node = config.nodeId;
    return new Writer()
      .int32(0) // throttle_time_ms
      .array([config], (w, b) => w.int32(b.nodeId).string(b.host).int32(b.port).string(null))
      .string(config.clusterId)
      .int32(node) // controller_id
      .array(answers, (w, t) =>
        w
          .int16(t.error)
          .string(t.name)
          .boolean(false) // is_internal
          .array(
            range(t.partitions),
            (pw, partition) =>
              pw
                .int16(ErrorCode.NONE)
                .int32(partition)
                .int32(node) // leader
                .array([node], (x, id) => x.int32(id)) // replicas
                .array([node], (x, id) => x.int32(id)) // isr
                .array([], () => undefined), // offline_replicas
          ),
      );
  },
};

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

import { isLegalTopicName } from '../log/topic-store.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * CreateTopics v3. num_partitions -1 takes the broker's default; a replica assignment sets the
 * partition count; replication factors other than 1 (or -1, the default) are refused, since there
 * is one broker. Topic configs are accepted and ignored.
 */
export const createTopics: ApiHandler = {
  key: ApiKey.CreateTopics,
  name: 'CreateTopics',
  minVersion: 3,
  maxVersion: 3,
  handle(request, { broker }) {
    const wanted = request.array((r) => ({
      name: r.string(),
      numPartitions: r.int32(),
      replicationFactor: r.int16(),
      assignments: r.array((a) => ({ partition: a.int32(), replicas: a.array((x) => x.int32()) })),
      configs: r.array((c) => ({ name: c.string(), value: c.nullableString() })),
    }));
    request.int32(); // timeout_ms: creation is immediate
    const validateOnly = request.boolean();
    const { topics, config } = broker;

    const results = wanted.map((t): { name: string; error: ErrorCode; message: string | null } => {
      const fail = (error: ErrorCode, message: string) => ({ name: t.name, error, message });
      if (!isLegalTopicName(t.name))
        return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, `Illegal topic name '${t.name}'`);
      if (topics.get(t.name))
        return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${t.name}' already exists.`);
      const partitions =
        t.assignments.length > 0
          ? t.assignments.length
          : t.numPartitions === -1
            ? config.defaultPartitions
            : t.numPartitions;
      if (partitions < 1)
        return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
      const replicationFactor = t.replicationFactor === -1 ? 1 : t.replicationFactor;
      if (replicationFactor !== 1) {
        return fail(
          ErrorCode.INVALID_REPLICATION_FACTOR,
          `Replication factor: ${replicationFactor} larger than available brokers: 1.`,
        );
      }
      if (!validateOnly) topics.create(t.name, partitions);
      return { name: t.name, error: ErrorCode.NONE, message: null };
    });

    return new Writer()
      .int32(0) // throttle_time_ms
      .array(results, (w, r) => w.string(r.name).int16(r.error).string(r.message));
  },
};

import type { PartitionLog } from '../log/partition-log.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { parseBatch, splitBatches } from '../records/record-batch.ts';
import { type ApiHandler, ApiKey } from './types.ts';

type PartitionResult = { partition: number; error: ErrorCode; baseOffset: number; logStartOffset: number };

/**
 * Produce v7. Each partition's record set must be exactly one valid v2 batch (see parseBatch).
 * Batches from an idempotent producer (producer id >= 0) go through the partition's sequence
 * check: a retry of a recent batch is acknowledged with its original base offset and not
 * appended twice; a gap or reordering is OUT_OF_ORDER_SEQUENCE_NUMBER. acks -1 and 1 are the same
 * on one broker; acks 0 gets no response. Transactional batches are refused.
 */
export const produce: ApiHandler = {
  key: ApiKey.Produce,
  name: 'Produce',
  minVersion: 7,
  maxVersion: 7,
  async handle(request, { broker, log }) {
    const transactionalId = request.nullableString();
    const acks = request.int16();
    request.int32(); // timeout_ms: appends are immediate
    const topics = request.array((t) => ({
      name: t.string(),
      partitions: t.array((p) => ({ partition: p.int32(), records: p.bytes() })),
    }));

    let appended = false;
    const results: { name: string; partitions: PartitionResult[] }[] = [];
    for (const topic of topics) {
      const partitions: PartitionResult[] = [];
      for (const { partition, records } of topic.partitions) {
        const partitionLog = broker.topics.partition(topic.name, partition);
        const fail = (error: ErrorCode) => ({ partition, error, baseOffset: -1, logStartOffset: -1 });
        if (![-1, 0, 1].includes(acks)) partitions.push(fail(ErrorCode.INVALID_REQUIRED_ACKS));
        else if (!partitionLog) partitions.push(fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
        else if (transactionalId !== null) partitions.push(fail(ErrorCode.INVALID_TXN_STATE));
        else {
          const result = await append(partitionLog, records);
          if ('error' in result) {
            log(`refused a batch for ${topic.name}-${partition}: ${result.message}`);
            partitions.push(fail(result.error));
          } else {
            appended ||= !result.duplicate;
            partitions.push({
              partition,
              error: ErrorCode.NONE,
              baseOffset: result.baseOffset,
              logStartOffset: 0,
            });
          }
        }
      }
      results.push({ name: topic.name, partitions });
    }
    if (appended) broker.topics.notifyAppend();
    if (acks === 0) return undefined;

    return new Writer()
      .array(results, (w, t) =>
        w.string(t.name).array(t.partitions, (pw, p) =>
          pw
            .int32(p.partition)
            .int16(p.error)
            .int64(p.baseOffset)
            .int64(-1) // log_append_time: topics use CreateTime
            .int64(p.logStartOffset),
        ),
      )
      .int32(0); // throttle_time_ms
  },
};

async function append(
  log: PartitionLog,
  records: Buffer | null,
): Promise<{ error: ErrorCode; message: string } | { baseOffset: number; duplicate: boolean }> {
  if (records === null) return { error: ErrorCode.INVALID_RECORD, message: 'null record set' };
  const batches = splitBatches(records);
  if ('error' in batches) return batches;
  const [only, ...more] = batches;
  if (!only || more.length > 0)
    return { error: ErrorCode.INVALID_RECORD, message: 'v3+ takes exactly one batch' };
  const batch = await parseBatch(only);
  if ('error' in batch) return batch;
  if (batch.transactional || batch.control) {
    return { error: ErrorCode.INVALID_TXN_STATE, message: 'transactions are not implemented' };
  }

  // No await between the sequence check and the append: concurrent produces cannot interleave.
  if (batch.producerId < 0) return { baseOffset: log.append(batch), duplicate: false };
  const check = log.producers.check(
    batch.producerId,
    batch.producerEpoch,
    batch.baseSequence,
    batch.recordCount,
  );
  if (check.kind === 'error') return check;
  if (check.kind === 'duplicate') return { baseOffset: check.baseOffset, duplicate: true };
  const baseOffset = log.append(batch);
  log.producers.record(
    batch.producerId,
    batch.producerEpoch,
    batch.baseSequence,
    batch.recordCount,
    baseOffset,
  );
  return { baseOffset, duplicate: false };
}

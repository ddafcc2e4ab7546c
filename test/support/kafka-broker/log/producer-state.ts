import { ErrorCode } from '../protocol/errors.ts';

/** Kafka keeps the metadata of the last five batches per producer to recognise retried ones. */
const RETAINED_BATCHES = 5;
const INT32_MAX = 2 ** 31 - 1;

type AppendedBatch = { firstSequence: number; lastSequence: number; baseOffset: number };
type ProducerEntry = { epoch: number; batches: AppendedBatch[] };

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | { kind: 'error'; error: ErrorCode; message: string };

export function lastSequenceOf(firstSequence: number, recordCount: number): number {
  const last = firstSequence + recordCount - 1;
  return last > INT32_MAX ? last - INT32_MAX - 1 : last;
}

/**
 * Idempotent-producer bookkeeping for one partition, as Kafka's ProducerStateManager does it:
 * a batch must continue its producer's sequence exactly; a retry of one of the last five batches
 * is acknowledged with its original offset and not appended again; anything else is out of order.
 */
export class ProducerStates {
  private readonly producers = new Map<number, ProducerEntry>();

  check(producerId: number, epoch: number, firstSequence: number, recordCount: number): SequenceCheck {
    const entry = this.producers.get(producerId);
    if (!entry || epoch > entry.epoch) {
      // A new producer (or a new epoch of one) starts its sequence at 0.
      return firstSequence === 0
        ? { kind: 'append' }
        : outOfOrder(`producer ${producerId} epoch ${epoch} must start at sequence 0, got ${firstSequence}`);
    }
    if (epoch < entry.epoch) {
      return {
        kind: 'error',
        error: ErrorCode.INVALID_PRODUCER_EPOCH,
        message: `epoch ${epoch} is older than ${entry.epoch}`,
      };
    }
    const lastSequence = lastSequenceOf(firstSequence, recordCount);
    const duplicate = entry.batches.find(
      (b) => b.firstSequence === firstSequence && b.lastSequence === lastSequence,
    );
    if (duplicate) return { kind: 'duplicate', baseOffset: duplicate.baseOffset };
    const previous = entry.batches.at(-1);
    const expected =
      previous === undefined ? 0 : previous.lastSequence === INT32_MAX ? 0 : previous.lastSequence + 1;
    if (firstSequence !== expected) {
      return outOfOrder(`producer ${producerId}: expected sequence ${expected}, got ${firstSequence}`);
    }
    return { kind: 'append' };
  }

  record(producerId: number, epoch: number, firstSequence: number, recordCount: number, baseOffset: number) {
    let entry = this.producers.get(producerId);
    if (!entry || epoch !== entry.epoch) {
      entry = { epoch, batches: [] };
      this.producers.set(producerId, entry);
    }
    entry.batches.push({
      firstSequence,
      lastSequence: lastSequenceOf(firstSequence, recordCount),
      baseOffset,
    });
    if (entry.batches.length > RETAINED_BATCHES) entry.batches.shift();
  }
}

function outOfOrder(message: string): SequenceCheck {
  return { kind: 'error', error: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message };
}

import type { ParsedBatch } from '../records/record-batch.ts';
import { withBaseOffset } from '../records/record-batch.ts';
import { ProducerStates } from './producer-state.ts';

type StoredBatch = {
  baseOffset: number;
  lastOffset: number;
  /** Per-record timestamps, for ListOffsets by time. */
  timestamps: number[];
  bytes: Buffer;
};

/**
 * One partition's log: record batches as the producer sent them, with the offset the log assigned
 * written into each. Nothing is ever deleted, so the log start offset stays 0.
 */
export class PartitionLog {
  readonly logStartOffset = 0;
  private nextOffset = 0;
  private readonly batches: StoredBatch[] = [];
  readonly producers = new ProducerStates();

  /** The offset the next record gets; also the last stable offset (no transactions here). */
  get highWatermark(): number {
    return this.nextOffset;
  }

  append(batch: ParsedBatch): number {
    const baseOffset = this.nextOffset;
    this.batches.push({
      baseOffset,
      lastOffset: baseOffset + batch.recordCount - 1,
      timestamps: batch.records.map((r) => r.timestamp),
      bytes: withBaseOffset(batch.bytes, baseOffset),
    });
    this.nextOffset += batch.recordCount;
    return baseOffset;
  }

  /**
   * Whole batches from the one holding `fetchOffset` on, up to `maxBytes`. With `atLeastOne` the
   * first batch is returned even when larger, so a consumer always makes progress (KIP-74).
   */
  read(fetchOffset: number, maxBytes: number, atLeastOne: boolean): Buffer[] {
    const out: Buffer[] = [];
    let size = 0;
    for (let i = this.indexOf(fetchOffset); i < this.batches.length; i++) {
      const batch = this.batches[i] as StoredBatch;
      if ((out.length > 0 || !atLeastOne) && size + batch.bytes.length > maxBytes) break;
      out.push(batch.bytes);
      size += batch.bytes.length;
    }
    return out;
  }

  /** The first offset whose record timestamp is at or after `timestamp`, or -1. */
  offsetForTimestamp(timestamp: number): { offset: number; timestamp: number } {
    for (const batch of this.batches) {
      const i = batch.timestamps.findIndex((t) => t >= timestamp);
      if (i >= 0) return { offset: batch.baseOffset + i, timestamp: batch.timestamps[i] as number };
    }
    return { offset: -1, timestamp: -1 };
  }

  /** Index of the first batch whose last offset is at or after `offset` (binary search). */
  private indexOf(offset: number): number {
    let low = 0;
    let high = this.batches.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.batches[mid] as StoredBatch).lastOffset < offset) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

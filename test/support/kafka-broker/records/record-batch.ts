import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { ErrorCode } from '../protocol/errors.ts';
import { Reader } from '../protocol/reader.ts';
import { crc32c } from './crc32c.ts';

/**
 * Record batch v2 ("magic 2"), the only message format this broker stores:
 *
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8
 *   17 crc uint32 | 21 attributes int16 | 23 lastOffsetDelta int32 | 27 firstTimestamp int64
 *   35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16 | 53 baseSequence int32
 *   57 recordCount int32 | 61 records (gzip-compressed as a whole when attributes & 7 == 1)
 *
 * batchLength counts the bytes after itself. The CRC-32C covers attributes to the end, so the
 * broker may rewrite baseOffset and partitionLeaderEpoch on append without recomputing it.
 */
export const BATCH_HEADER_SIZE = 61;
const LOG_OVERHEAD = 12; // baseOffset + batchLength
const CRC_START = 21;
const MAGIC = 2;

const Attribute = { COMPRESSION_MASK: 0x07, TRANSACTIONAL: 0x10, CONTROL: 0x20 } as const;
const Compression = { NONE: 0, GZIP: 1 } as const;

const gunzipAsync = promisify(gunzip);

export type RecordHeader = { key: string; value: Buffer | null };
export type DecodedRecord = {
  offsetDelta: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
};

export type ParsedBatch = {
  bytes: Buffer;
  recordCount: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
  control: boolean;
  records: DecodedRecord[];
};

export type BatchError = { error: ErrorCode; message: string };

/** Splits a RECORDS field (several batches back to back) into one buffer per batch. */
export function splitBatches(records: Buffer): Buffer[] | BatchError {
  const batches: Buffer[] = [];
  let at = 0;
  while (at < records.length) {
    if (records.length - at < LOG_OVERHEAD) return corrupt('truncated batch header');
    const size = LOG_OVERHEAD + records.readInt32BE(at + 8);
    if (size < BATCH_HEADER_SIZE || at + size > records.length) return corrupt('truncated record batch');
    batches.push(records.subarray(at, at + size));
    at += size;
  }
  return batches;
}

/**
 * Validates one batch as the broker's log does before appending it: magic 2, CRC-32C, a supported
 * codec, and records whose count and offset deltas match the header (0, 1, ... lastOffsetDelta).
 */
export async function parseBatch(bytes: Buffer): Promise<ParsedBatch | BatchError> {
  const magic = bytes.readInt8(16);
  if (magic !== MAGIC) {
    return { error: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, message: `magic ${magic}, only 2 is stored` };
  }
  if (bytes.readUInt32BE(17) !== crc32c(bytes.subarray(CRC_START))) return corrupt('CRC-32C mismatch');
  const attributes = bytes.readInt16BE(21);
  const codec = attributes & Attribute.COMPRESSION_MASK;
  if (codec !== Compression.NONE && codec !== Compression.GZIP) {
    return { error: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, message: `compression codec ${codec}` };
  }
  const lastOffsetDelta = bytes.readInt32BE(23);
  const firstTimestamp = Number(bytes.readBigInt64BE(27));
  const recordCount = bytes.readInt32BE(57);
  if (recordCount <= 0 || recordCount !== lastOffsetDelta + 1) {
    return invalid(`${recordCount} records but lastOffsetDelta ${lastOffsetDelta}`);
  }
  let body = bytes.subarray(BATCH_HEADER_SIZE);
  if (codec === Compression.GZIP) {
    try {
      body = await gunzipAsync(body);
    } catch {
      return corrupt('gzip stream does not decompress');
    }
  }
  const records: DecodedRecord[] = [];
  try {
    const reader = new Reader(body);
    for (let i = 0; i < recordCount; i++) {
      const record = decodeRecord(new Reader(reader.raw(reader.varint())), firstTimestamp);
      if (record.offsetDelta !== i) return invalid(`record ${i} has offset delta ${record.offsetDelta}`);
      records.push(record);
    }
    if (reader.remaining !== 0) return invalid(`${reader.remaining} bytes after the last record`);
  } catch {
    return corrupt('records do not decode');
  }
  return {
    bytes,
    recordCount,
    producerId: Number(bytes.readBigInt64BE(43)),
    producerEpoch: bytes.readInt16BE(51),
    baseSequence: bytes.readInt32BE(53),
    transactional: (attributes & Attribute.TRANSACTIONAL) !== 0,
    control: (attributes & Attribute.CONTROL) !== 0,
    records,
  };
}

function decodeRecord(reader: Reader, firstTimestamp: number): DecodedRecord {
  reader.int8(); // record attributes, unused
  const timestamp = firstTimestamp + Number(reader.varlong());
  const offsetDelta = reader.varint();
  const key = reader.varintBytes();
  const value = reader.varintBytes();
  const headerCount = reader.varint();
  const headers: RecordHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const headerKey = reader.varintBytes();
    if (headerKey === null) throw new Error('null header key');
    headers.push({ key: headerKey.toString('utf8'), value: reader.varintBytes() });
  }
  return { offsetDelta, timestamp, key, value, headers };
}

/** A copy of the batch with the offset the log assigned; both fields lie outside the CRC. */
export function withBaseOffset(batch: Buffer, baseOffset: number, leaderEpoch = 0): Buffer {
  const copy = Buffer.from(batch);
  copy.writeBigInt64BE(BigInt(baseOffset), 0);
  copy.writeInt32BE(leaderEpoch, 12);
  return copy;
}

function corrupt(message: string): BatchError {
  return { error: ErrorCode.CORRUPT_MESSAGE, message };
}

function invalid(message: string): BatchError {
  return { error: ErrorCode.INVALID_RECORD, message };
}

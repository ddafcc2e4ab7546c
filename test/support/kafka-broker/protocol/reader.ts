/** Thrown when a request is shorter than its fields say; the connection is closed, as Kafka does. */
export class MalformedRequestError extends Error {
  override name = 'MalformedRequestError';
}

/**
 * Reads the Kafka protocol's primitive types (big-endian ints, int16-length strings, int32-length
 * bytes and arrays) and the record format's zigzag varints, from the front of a buffer.
 */
export class Reader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private take(length: number): number {
    if (length < 0 || this.offset + length > this.buffer.length) {
      throw new MalformedRequestError(`need ${length} bytes at ${this.offset} of ${this.buffer.length}`);
    }
    const at = this.offset;
    this.offset += length;
    return at;
  }

  int8(): number {
    return this.buffer.readInt8(this.take(1));
  }

  int16(): number {
    return this.buffer.readInt16BE(this.take(2));
  }

  int32(): number {
    return this.buffer.readInt32BE(this.take(4));
  }

  int64(): bigint {
    return this.buffer.readBigInt64BE(this.take(8));
  }

  /** An int64 that must fit a JavaScript number (offsets, timestamps, producer ids). */
  int64Number(): number {
    const value = this.int64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new MalformedRequestError(`int64 ${value} out of range`);
    }
    return Number(value);
  }

  boolean(): boolean {
    return this.int8() !== 0;
  }

  raw(length: number): Buffer {
    const at = this.take(length);
    return this.buffer.subarray(at, at + length);
  }

  nullableString(): string | null {
    const length = this.int16();
    return length < 0 ? null : this.raw(length).toString('utf8');
  }

  string(): string {
    const value = this.nullableString();
    if (value === null) throw new MalformedRequestError('null where a string is required');
    return value;
  }

  bytes(): Buffer | null {
    const length = this.int32();
    return length < 0 ? null : this.raw(length);
  }

  /** An int32-counted array; a null array (-1) reads as `null`. */
  nullableArray<T>(read: (reader: Reader) => T): T[] | null {
    const length = this.int32();
    if (length < 0) return null;
    const items: T[] = [];
    for (let i = 0; i < length; i++) items.push(read(this));
    return items;
  }

  array<T>(read: (reader: Reader) => T): T[] {
    return this.nullableArray(read) ?? [];
  }

  /** Unsigned LEB128, at most 5 bytes. */
  uvarint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.buffer.readUInt8(this.take(1));
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
    }
    throw new MalformedRequestError('varint longer than 5 bytes');
  }

  /** Zigzag-encoded signed varint (record lengths, deltas, key/value/header lengths). */
  varint(): number {
    const raw = this.uvarint();
    return (raw >>> 1) ^ -(raw & 1);
  }

  /** Zigzag-encoded signed varlong (the record's timestamp delta). */
  varlong(): bigint {
    let raw = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = BigInt(this.buffer.readUInt8(this.take(1)));
      raw |= (byte & 0x7fn) << shift;
      if ((byte & 0x80n) === 0n) return (raw >> 1n) ^ -(raw & 1n);
    }
    throw new MalformedRequestError('varlong longer than 10 bytes');
  }

  varintBytes(): Buffer | null {
    const length = this.varint();
    return length < 0 ? null : this.raw(length);
  }
}

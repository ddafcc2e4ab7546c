/**
 * Builds a response body: the Kafka protocol's primitive types into a growing buffer. Every method
 * returns the writer, so fields chain in wire order.
 */
export class Writer {
  private buffer = Buffer.alloc(256);
  private offset = 0;

  /** Makes room for `length` bytes and returns where they go; may replace `this.buffer`. */
  private reserve(length: number): number {
    if (this.offset + length > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.offset + length));
      this.buffer.copy(grown, 0, 0, this.offset);
      this.buffer = grown;
    }
    const at = this.offset;
    this.offset += length;
    return at;
  }

  get size(): number {
    return this.offset;
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.offset);
  }

  int8(value: number): this {
    const at = this.reserve(1);
    this.buffer.writeInt8(value, at);
    return this;
  }

  int16(value: number): this {
    const at = this.reserve(2);
    this.buffer.writeInt16BE(value, at);
    return this;
  }

  int32(value: number): this {
    const at = this.reserve(4);
    this.buffer.writeInt32BE(value, at);
    return this;
  }

  int64(value: number | bigint): this {
    const at = this.reserve(8);
    this.buffer.writeBigInt64BE(BigInt(value), at);
    return this;
  }

  boolean(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }

  raw(bytes: Buffer): this {
    const at = this.reserve(bytes.length);
    bytes.copy(this.buffer, at);
    return this;
  }

  /** int16 length then UTF-8; `null` is length -1 (NULLABLE_STRING). */
  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const bytes = Buffer.from(value, 'utf8');
    return this.int16(bytes.length).raw(bytes);
  }

  /** int32 length then the bytes; `null` is length -1. */
  bytes(value: Buffer | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.length).raw(value);
  }

  /** int32 count, then each item written by `write`; `null` is count -1. */
  array<T>(items: readonly T[] | null, write: (writer: this, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const item of items) write(this, item);
    return this;
  }
}

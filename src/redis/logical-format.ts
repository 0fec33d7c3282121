import { Transform, type TransformCallback } from 'node:stream';
import { Crc64 } from './crc64.js';

/**
 * The logical archive: `OPSRDL1\n`, a u32 length + JSON header, then one record per key
 *   'K' u16 db | u32 keyLength | key | i64 expireAtMs (-1: none) | u32 dumpLength | DUMP payload
 * and an 'E' record with the u64 number of keys. Binary-safe keys, one key at a time in
 * memory (a big key is written as its header and its DUMP buffer, not copied).
 */
export const MAGIC = Buffer.from('OPSRDL1\n');

export interface LogicalHeader {
  format: 'ops-redis-logical/1';
  createdAt: string;
  redisVersion: string;
  dbs: number[];
}

export interface LogicalRecord {
  db: number;
  key: Buffer;
  expireAtMs: number;
  payload: Buffer;
}

export function encodeHeader(header: LogicalHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, len, json]);
}

/** Bytes of a record head besides the key: type, db, key length, expiry, payload length. */
export const RECORD_HEAD_BYTES = 1 + 2 + 4 + 8 + 4;
const NO_EXPIRY_HIGH = 0xffffffff;

/**
 * Writes a record head (everything before the payload) into `out` at `offset`; returns
 * the offset after it. The expiry goes as two 32-bit halves (exact below 2^53 ms, and
 * cheaper than a BigInt per key).
 */
export function writeRecordHead(out: Buffer, offset: number, db: number, key: Buffer, expireAtMs: number, payloadLength: number): number {
  out[offset] = 0x4b;
  out.writeUInt16BE(db, offset + 1);
  out.writeUInt32BE(key.length, offset + 3);
  let o = offset + 7 + key.copy(out, offset + 7);
  if (expireAtMs < 0) {
    out.writeUInt32BE(NO_EXPIRY_HIGH, o);
    out.writeUInt32BE(NO_EXPIRY_HIGH, o + 4);
  } else {
    out.writeUInt32BE(Math.floor(expireAtMs / 0x1_0000_0000), o);
    out.writeUInt32BE(expireAtMs % 0x1_0000_0000, o + 4);
  }
  out.writeUInt32BE(payloadLength, o + 8);
  o += 12;
  return o;
}

/** Record head as its own buffer; the payload buffer follows as is. */
export function encodeRecordHead(db: number, key: Buffer, expireAtMs: number, payloadLength: number): Buffer {
  const head = Buffer.alloc(RECORD_HEAD_BYTES + key.length);
  writeRecordHead(head, 0, db, key, expireAtMs, payloadLength);
  return head;
}

export function encodeEnd(count: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt8(0x45, 0);
  b.writeBigUInt64BE(BigInt(count), 1);
  return b;
}

/**
 * DUMP payloads end with a 2-byte RDB version and the CRC-64 of everything before the
 * CRC: the per-record check, and the version RESTORE will compare with its own.
 */
export function dumpFooter(payload: Buffer): { rdbVersion: number; crcOk: boolean } {
  if (payload.length < 10) return { rdbVersion: -1, crcOk: false };
  const rdbVersion = payload.readUInt16LE(payload.length - 10);
  const crc = new Crc64().update(payload.subarray(0, payload.length - 8)).digestLE();
  return { rdbVersion, crcOk: crc.equals(payload.subarray(payload.length - 8)) };
}

const BIG_RECORD = 4 << 20;

/** Parses the archive into objects: header first, then records, then `{ end: count }`. */
export class LogicalReader extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  // Chunks are only joined once the next step has all the bytes it needs: a big record
  // arriving in many chunks is assembled once, not re-copied with every chunk.
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private need = 0;
  /**
   * A big record is received straight into one buffer of its announced size: joining its
   * chunks at the end would hold it twice (a 200 MiB value cost 400 MiB at that moment).
   */
  private big: { buf: Buffer; filled: number } | undefined;
  private state: 'magic' | 'header' | 'records' | 'done' = 'magic';
  header: LogicalHeader | undefined;
  endCount: number | undefined;

  constructor() {
    // Records are objects: a thousand of them ahead of a slow consumer, not a million.
    super({ readableObjectMode: true, readableHighWaterMark: 1000, writableHighWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.big) {
      const take = Math.min(chunk.length, this.big.buf.length - this.big.filled);
      chunk.copy(this.big.buf, this.big.filled, 0, take);
      this.big.filled += take;
      if (this.big.filled < this.big.buf.length) return cb();
      // Complete: exactly the bytes up to the record's end; the rest of the chunk follows.
      this.buf = this.big.buf;
      this.big = undefined;
      this.parts = [];
      this.partsBytes = 0;
      try {
        this.drain();
      } catch (error) {
        return cb(error as Error);
      }
      this.parts = this.buf.length ? [this.buf] : [];
      this.partsBytes = this.buf.length;
      return take < chunk.length ? this._transform(chunk.subarray(take), _e, cb) : cb();
    }
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    if (this.partsBytes < this.need) {
      if (this.need >= BIG_RECORD) {
        const buf = Buffer.allocUnsafe(this.need);
        let o = 0;
        for (const p of this.parts) o += p.copy(buf, o);
        this.big = { buf, filled: o };
        this.parts = [];
        this.partsBytes = 0;
      }
      return cb();
    }
    this.buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
    try {
      this.drain();
      cb();
    } catch (error) {
      cb(error as Error);
    } finally {
      this.parts = this.buf.length ? [this.buf] : [];
      this.partsBytes = this.buf.length;
    }
  }

  /** Not enough bytes for the next step: wait until `bytes` are buffered. */
  private wait(bytes: number): void {
    this.need = bytes;
  }

  private drain(): void {
    for (;;) {
      if (this.state === 'magic') {
        if (this.buf.length < MAGIC.length) return this.wait(MAGIC.length);
        if (!this.buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an ops-automation logical Redis archive (bad magic)');
        this.buf = this.buf.subarray(MAGIC.length);
        this.state = 'header';
      } else if (this.state === 'header') {
        if (this.buf.length < 4) return this.wait(4);
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + len) return this.wait(4 + len);
        this.header = JSON.parse(this.buf.toString('utf8', 4, 4 + len)) as LogicalHeader;
        this.buf = this.buf.subarray(4 + len);
        this.state = 'records';
      } else if (this.state === 'records') {
        if (this.buf.length < 1) return this.wait(1);
        const type = this.buf[0];
        if (type === 0x45) {
          if (this.buf.length < 9) return this.wait(9);
          this.endCount = Number(this.buf.readBigUInt64BE(1));
          this.buf = this.buf.subarray(9);
          this.state = 'done';
          continue;
        }
        if (type !== 0x4b) throw new Error(`corrupt archive: unexpected record type 0x${type?.toString(16)}`);
        if (this.buf.length < 7) return this.wait(7);
        const keyLen = this.buf.readUInt32BE(3);
        if (this.buf.length < 7 + keyLen + 12) return this.wait(7 + keyLen + 12);
        const payloadLen = this.buf.readUInt32BE(7 + keyLen + 8);
        const total = 7 + keyLen + 12 + payloadLen;
        if (this.buf.length < total) return this.wait(total);
        // Slices, not copies: they keep their chunk alive only while the record is in use
        // (at most a thousand records wait in this stream).
        const record: LogicalRecord = {
          db: this.buf.readUInt16BE(1),
          key: this.buf.subarray(7, 7 + keyLen),
          expireAtMs: Number(this.buf.readBigInt64BE(7 + keyLen)),
          payload: this.buf.subarray(7 + keyLen + 12, total),
        };
        this.buf = this.buf.subarray(total);
        this.push(record);
      } else {
        if (this.buf.length > 0) throw new Error('corrupt archive: data after the end record');
        return this.wait(0);
      }
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.state !== 'done') return cb(new Error(`archive ends early (${this.state === 'records' ? 'no end record' : `in the ${this.state}`})`));
    cb();
  }
}

import { Writable } from 'node:stream';
import { Crc64 } from './crc64.js';

export interface RdbCheckResult {
  bytes: number;
  magicOk: boolean;
  version: number | null;
  /** `disabled`: the server runs with rdbchecksum no and wrote zeros. */
  checksum: 'ok' | 'mismatch' | 'disabled' | 'too-short';
  expected: string | null;
  actual: string | null;
}

/**
 * Consumes an RDB stream: `REDIS` magic and 4-digit version at the start, and the
 * CRC-64/Jones of everything before the last 8 bytes compared with those bytes.
 */
export class RdbChecker extends Writable {
  private readonly crc = new Crc64();
  private held: Buffer = Buffer.alloc(0);
  private head: Buffer = Buffer.alloc(0);
  private total = 0;

  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.total += chunk.length;
    if (this.head.length < 9) this.head = Buffer.concat([this.head, chunk.subarray(0, 9 - this.head.length)]);
    if (chunk.length >= 8) {
      this.crc.update(this.held);
      this.crc.update(chunk.subarray(0, chunk.length - 8));
      this.held = Buffer.from(chunk.subarray(chunk.length - 8));
    } else {
      const combined = Buffer.concat([this.held, chunk]);
      if (combined.length > 8) this.crc.update(combined.subarray(0, combined.length - 8));
      this.held = combined.subarray(Math.max(0, combined.length - 8));
    }
    cb();
  }

  result(): RdbCheckResult {
    const magicOk = this.head.subarray(0, 5).toString('latin1') === 'REDIS';
    const v = Number(this.head.subarray(5, 9).toString('latin1'));
    const version = magicOk && Number.isInteger(v) ? v : null;
    if (this.total < 17) return { bytes: this.total, magicOk, version, checksum: 'too-short', expected: null, actual: null };
    const expected = this.held.toString('hex');
    if (/^0+$/.test(expected)) return { bytes: this.total, magicOk, version, checksum: 'disabled', expected, actual: null };
    const actual = this.crc.digestLE().toString('hex');
    return { bytes: this.total, magicOk, version, checksum: actual === expected ? 'ok' : 'mismatch', expected, actual };
  }
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstWholeRecordEnd } from '../../src/wal/records.js';

const PAGE = 8192;

/** A segment's first pages: the long header (xlp_rem_len at 16, xlp_xlog_blcksz at 36), short headers after. */
function segment(pages: number, continued: number): Buffer {
  const b = Buffer.alloc(pages * PAGE);
  for (let p = 0; p < pages; p += 1) b.writeUInt16LE(0xd110, p * PAGE);
  b.writeUInt32LE(continued, 16);
  b.writeUInt32LE(PAGE, 36);
  return b;
}

describe('firstWholeRecordEnd: where the first whole record that starts in a segment ends (page headers skipped)', () => {
  it('the layout pg_waldump 15 showed for a real segment: 1917 bytes continued, then a 7693-byte record from 0/050007A8 across the first page boundary, ending before the next at 0/050025D0', () => {
    const b = segment(2, 1917);
    b.writeUInt32LE(7693, 0x7a8);
    assert.equal(firstWholeRecordEnd(b, b.length), 9677);
    assert.equal(0x25d0, (9677 + 7) & ~7, 'the next record starts MAXALIGNed after it');
    assert.equal(firstWholeRecordEnd(b, 9676), undefined, 'cut one byte short: no whole record');
  });

  it('no continuation: the first record right after the long header', () => {
    const b = segment(1, 0);
    b.writeUInt32LE(100, 40);
    assert.equal(firstWholeRecordEnd(b, 140), 140);
    assert.equal(firstWholeRecordEnd(b, 139), undefined);
  });

  it('bytes that only continue a record from the segment before (across a page): nothing whole starts here', () => {
    const b = segment(3, 10_000);
    assert.equal(firstWholeRecordEnd(b, 10_000), undefined);
    // The continuation ends on page 2 (40 + 8152 on page 1, 1848 more after its 24-byte header): the next record at 10112.
    b.writeUInt32LE(64, 8192 + 24 + 1848);
    assert.equal(firstWholeRecordEnd(b, b.length), 8192 + 24 + 1848 + 64);
  });

  it('a continuation that ends exactly at a page end: the next record follows the next page header', () => {
    const b = segment(2, PAGE - 40);
    b.writeUInt32LE(48, PAGE + 24);
    assert.equal(firstWholeRecordEnd(b, b.length), PAGE + 24 + 48);
  });

  it('zero fill or a length no record has, and a segment that is not one: no record', () => {
    assert.equal(firstWholeRecordEnd(segment(1, 0), PAGE), undefined, 'zeros after the header');
    const b = segment(1, 0);
    b.writeUInt32LE(8, 40);
    assert.equal(firstWholeRecordEnd(b, PAGE), undefined, 'shorter than a record header');
    assert.equal(firstWholeRecordEnd(Buffer.alloc(20), 20), undefined);
    const odd = segment(1, 0);
    odd.writeUInt32LE(1000, 36);
    odd.writeUInt32LE(100, 40);
    assert.equal(firstWholeRecordEnd(odd, PAGE), undefined, 'a block size that is no power of two');
  });
});

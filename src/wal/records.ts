/**
 * Just enough of PostgreSQL's WAL page layout (access/xlog_internal.h, xlogrecord.h) to
 * say whether the first bytes of a segment hold a whole record that starts in it: every
 * page begins with a header (24 bytes; the segment's first page 40), whose xlp_rem_len
 * says how many bytes at its start continue a record begun before; records start
 * MAXALIGN'd (8) and begin with their total length (xl_tot_len, 4 bytes, never split by a
 * page boundary because of that alignment); a record's bytes skip the page headers they
 * cross. Used where a restore must tell "recovery stopped before the streamed bytes" from
 * "the streamed bytes hold no record recovery could replay".
 */
const SHORT_HEADER = 24;
const LONG_HEADER = 40;
/** SizeOfXLogRecord: a record shorter than its own header is not a record. */
const RECORD_HEADER = 24;
/** Beyond XLogRecordMaxSize (1020 MB): not a length PostgreSQL writes. */
const MAX_RECORD = 1020 * 1024 * 1024;

const align8 = (n: number) => (n + 7) & ~7;

/**
 * The end offset of the first whole record that starts in this segment, within its first
 * `end` bytes, or undefined when none does (the bytes only continue a record from the
 * segment before, or the record they start is cut off at `end`).
 */
export function firstWholeRecordEnd(segment: Buffer, end: number): number | undefined {
  if (end < LONG_HEADER || segment.length < LONG_HEADER) return undefined;
  const page = segment.readUInt32LE(36);
  if (page < 1024 || (page & (page - 1)) !== 0) return undefined;
  /** `n` record bytes on from `at`, skipping the page headers they cross. */
  const advance = (at: number, n: number): number => {
    let pos = at;
    let left = n;
    while (left > 0) {
      const room = (Math.floor(pos / page) + 1) * page - pos;
      if (left <= room) return pos + left;
      left -= room;
      pos += room + SHORT_HEADER;
    }
    return pos;
  };
  let pos = LONG_HEADER;
  const continued = segment.readUInt32LE(16);
  if (continued > 0) pos = align8(advance(pos, continued));
  const limit = Math.min(end, segment.length);
  while (pos + 4 <= limit) {
    if (pos % page === 0) {
      pos += SHORT_HEADER;
      continue;
    }
    const total = segment.readUInt32LE(pos);
    if (total < RECORD_HEADER || total > MAX_RECORD) return undefined;
    const recordEnd = advance(pos, total);
    return recordEnd <= limit ? recordEnd : undefined;
  }
  return undefined;
}

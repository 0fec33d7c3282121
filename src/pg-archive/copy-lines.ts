const NL = 0x0a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

const START = 0;
const BACKSLASH_SEEN = 1;
const MARKER_SEEN = 2;
const MID_LINE = 3;

/**
 * Counts the rows of one table's COPY text as pg_dump stores it: one row per line
 * (text format escapes newlines inside values), up to the `\.` end-of-copy line that
 * pg_dump up to 17 writes into the data itself. What follows that marker is never sent
 * to the server as rows, so it is not counted. A row without its line end means the
 * data was cut off.
 */
export class CopyLines {
  rows = 0;
  bytes = 0;
  ended = false;
  private state = START;

  push(buf: Buffer): void {
    this.pushRange(buf, 0, buf.length);
  }

  /** The bytes `buf[start, end)`: no slice is made, which matters at one call per row. */
  pushRange(buf: Buffer, start: number, n: number): void {
    this.bytes += n - start;
    if (this.ended) return;
    let i = start;
    while (i < n) {
      if (this.state === MID_LINE) {
        const end = buf.indexOf(NL, i);
        if (end === -1 || end >= n) return;
        this.rows += 1;
        this.state = START;
        i = end + 1;
        continue;
      }
      const b = buf[i]!;
      i += 1;
      if (this.state === START) {
        if (b === NL) this.rows += 1; // a row of a table with no columns
        else this.state = b === BACKSLASH ? BACKSLASH_SEEN : MID_LINE;
      } else if (this.state === BACKSLASH_SEEN) {
        if (b === NL) {
          this.rows += 1;
          this.state = START;
        } else this.state = b === DOT ? MARKER_SEEN : MID_LINE;
      } else if (b === NL) {
        this.ended = true;
        return;
      } else this.state = MID_LINE;
    }
  }

  /** True when the data stopped inside a row (neither at a line start nor after the marker). */
  get cutOff(): boolean {
    return !this.ended && this.state !== START;
  }
}

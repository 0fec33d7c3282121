import { Writable } from 'node:stream';

const NL = 0x0a;
const COPY_PREFIX = Buffer.from('COPY ');
const FROM_STDIN = ' FROM stdin;';

/**
 * Reads the SQL script pg_restore writes and counts the data rows of every
 * `COPY … FROM stdin;` block, so row counts come from the archive itself. COPY text
 * format escapes newlines inside values, so one line is one row until the `\.` line.
 */
export class CopyRowCounter extends Writable {
  readonly counts = new Map<string, number>();
  private current: string | undefined;
  private rows = 0;
  private carry: Buffer = Buffer.alloc(0);
  /** True once every COPY block that began also ended. */
  get balanced(): boolean {
    return this.current === undefined;
  }

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    let buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const end = buf.indexOf(NL, start);
      if (end === -1) break;
      this.line(buf, start, end);
      start = end + 1;
    }
    this.carry = start < buf.length ? Buffer.from(buf.subarray(start)) : Buffer.alloc(0);
    buf = Buffer.alloc(0);
    callback();
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (this.current !== undefined) {
      if (end - start === 2 && buf[start] === 0x5c && buf[start + 1] === 0x2e) {
        this.counts.set(this.current, (this.counts.get(this.current) ?? 0) + this.rows);
        this.current = undefined;
        this.rows = 0;
      } else {
        this.rows += 1;
      }
      return;
    }
    if (end - start > COPY_PREFIX.length && buf.compare(COPY_PREFIX, 0, COPY_PREFIX.length, start, start + COPY_PREFIX.length) === 0) {
      const text = buf.toString('utf8', start, end);
      if (text.endsWith(FROM_STDIN)) this.current = copyTarget(text);
    }
  }
}

/** `COPY public."Mixed" (a, b) FROM stdin;` -> `public."Mixed"` (quoting as printed). */
export function copyTarget(line: string): string {
  // A COPY statement as the table of contents stores it ends with a line break: the target is
  // that of the line without it, read in place (a copy of each statement without its line
  // break, which the target then pointed into, held 3 MiB more at 50,000 tables).
  const end = line.endsWith('\n') ? line.length - 1 : line.length;
  const body = line.slice(COPY_PREFIX.length, end - FROM_STDIN.length);
  let inQuote = false;
  for (let i = 0; i < body.length; i += 1) {
    const ch = body[i];
    if (ch === '"') inQuote = !inQuote;
    else if (ch === ' ' && !inQuote) return body.slice(0, i);
  }
  return body;
}

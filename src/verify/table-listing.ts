/**
 * The TABLE lines of `pg_restore --list` ("215; 1259 16390 TABLE Other Schema my table
 * postgres"), read as its output arrives: only the text after "TABLE " of those lines is
 * kept, decoded line by line. Holding the whole listing (150,000 lines, 8 MB at 50,000
 * tables) as chunks and then joined cost 16 MB of heap at verify's peak.
 */
export class TableListing {
  /** By dump id (at most 10 digits), the text after "TABLE " of the last line with that id. */
  readonly byId = new Map<number, string>();
  /** The text after "TABLE " of every line "<digits>; <digits> <digits> TABLE <text>", in order. */
  readonly texts: string[] = [];
  private partial: Buffer[] = [];

  /** The listing as one string (tests, and anything already read whole). */
  static of(listing: string): TableListing {
    const l = new TableListing();
    l.push(Buffer.from(listing, 'utf8'));
    l.end();
    return l;
  }

  push(chunk: Buffer): void {
    let from = 0;
    for (let eol = chunk.indexOf(NL); eol >= 0; eol = chunk.indexOf(NL, from)) {
      if (this.partial.length > 0) {
        this.partial.push(chunk.subarray(from, eol));
        const line = Buffer.concat(this.partial);
        this.partial = [];
        this.line(line, 0, line.length);
      } else this.line(chunk, from, eol);
      from = eol + 1;
    }
    // Copied: a view would keep the whole chunk alive until the line ends.
    if (from < chunk.length) this.partial.push(Buffer.from(chunk.subarray(from)));
  }

  /** The output ended: a last line without its line break counts too. */
  end(): void {
    if (this.partial.length === 0) return;
    const line = Buffer.concat(this.partial);
    this.partial = [];
    this.line(line, 0, line.length);
  }

  /**
   * One line, `buf[start, end)`. The dump id leads (digits, then "; "), then the catalog and
   * object oids, then the description: "TABLE " starts both TABLE and TABLE DATA lines, and a
   * TABLE line of a schema named DATA reads like the latter, so every such line is kept.
   */
  private line(buf: Buffer, start: number, end: number): void {
    let k = start;
    let id = 0;
    while (k < end && isDigit(buf[k]!)) id = id * 10 + (buf[k++]! - ZERO);
    const digits = k - start;
    if (digits === 0 || k + 2 > end || buf[k] !== SEMICOLON || buf[k + 1] !== SPACE) return;
    k += 2;
    for (let field = 0; field < 2; field += 1) {
      const from = k;
      while (k < end && isDigit(buf[k]!)) k += 1;
      if (k === from || k >= end || buf[k] !== SPACE) return;
      k += 1;
    }
    if (k + TABLE_WORD.length > end || buf.compare(TABLE_WORD, 0, TABLE_WORD.length, k, k + TABLE_WORD.length) !== 0) return;
    const text = buf.toString('utf8', k + TABLE_WORD.length, end);
    this.texts.push(text);
    if (digits <= 10) this.byId.set(id, text);
  }
}

const NL = 0x0a;
const SPACE = 0x20;
const SEMICOLON = 0x3b;
const ZERO = 0x30;
const TABLE_WORD = Buffer.from('TABLE ', 'latin1');

const isDigit = (c: number) => c >= ZERO && c <= 0x39;

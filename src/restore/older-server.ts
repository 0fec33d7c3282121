import { Transform, type TransformCallback } from 'node:stream';

/**
 * pg_restore opens every script with SET statements of its own major, whatever the target:
 * 17 and 18 write `SET transaction_timeout = 0;`, which a 16 server rejects
 * ("unrecognized configuration parameter"), so pg_restore 17 cannot restore a dump into
 * the 16 server it was taken from (production's pairing: the image's 17 tools, a 16
 * server). For such a target the script goes through this filter into psql.
 *
 * Only the preamble is touched: the lines before the first one that is not blank, a
 * comment, a SET, a set_config() call or psql's \restrict. There a SET of a parameter the
 * target does not know (and that is no custom `a.b` placeholder) is dropped; a timeout the
 * server lacks cannot fire there anyway. Everything after the preamble passes unchanged,
 * so a row of COPY data that happens to read like such a line is never altered.
 */
export class PreambleFilter extends Transform {
  // Bytes, not text: a chunk may end inside a multi-byte character of the data after the preamble.
  private pending = Buffer.alloc(0);
  private inPreamble = true;
  readonly dropped: string[] = [];

  constructor(private readonly known: ReadonlySet<string>) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.inPreamble) return done(null, chunk);
    this.pending = Buffer.concat([this.pending, chunk]);
    this.drain(false);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.inPreamble) this.drain(true);
    done();
  }

  private drain(final: boolean): void {
    const out: Buffer[] = [];
    for (;;) {
      const nl = this.pending.indexOf(0x0a);
      if (nl < 0) break;
      const raw = this.pending.subarray(0, nl + 1);
      // The preamble is ASCII; latin1 reads any byte without replacing it.
      const line = raw.toString('latin1', 0, nl);
      this.pending = this.pending.subarray(nl + 1);
      if (!PREAMBLE_LINE.test(line)) {
        this.inPreamble = false;
        out.push(raw);
        break;
      }
      const set = /^SET\s+([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|TO\b)/i.exec(line);
      if (set && !set[1]!.includes('.') && !this.known.has(set[1]!.toLowerCase())) {
        this.dropped.push(set[1]!);
        continue;
      }
      out.push(raw);
    }
    if (!this.inPreamble || final) {
      out.push(this.pending);
      this.pending = Buffer.alloc(0);
      this.inPreamble = false;
    }
    const all = Buffer.concat(out);
    if (all.length > 0) this.push(all);
  }
}

const PREAMBLE_LINE = /^(?:|--.*|SET\s.*|SELECT pg_catalog\.set_config\(.*|\\restrict\s.*)$/;

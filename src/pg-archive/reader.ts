import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflate, type Inflate } from 'node:zlib';
import { copyTarget } from '../verify/copy-counter.js';
import { CopyLines } from './copy-lines.js';
import {
  ArchiveDecompressionError,
  ArchiveError,
  ArchiveDuplicateBlockError,
  ArchiveFormatError,
  ArchiveMissingDataError,
  ArchiveTrailingBytesError,
  ArchiveTruncatedError,
} from './errors.js';
import { BLK_BLOBS, BLK_DATA, MAX_TOC_BYTES, type BlockCompression } from './format.js';
import { IdSet } from './id-set.js';
import { NeedMoreInput, decodeInt, describeEntry, entriesWithData, newTocProgress, parseTocFrom, type ArchiveToc, type TocEntry, type TocProgress } from './toc.js';

/** Rows of one TABLE DATA entry, counted from its COPY text. */
export interface TableData {
  dumpId: number;
  schema: string | null;
  table: string | null;
  /** The COPY target as pg_restore prints it (`public."Mixed"`): the key of verification.json's rowCounts. */
  key: string;
  rows: number;
  /** Decoded bytes of COPY text. */
  bytes: number;
}

export interface ArchiveSummary extends ArchiveToc {
  tables: TableData[];
  largeObjects: { count: number; bytes: number };
  /** Bytes of the whole archive as read. */
  bytes: number;
  /**
   * Set when the blocks are compressed with a codec this reader does not decode (lz4,
   * zstd: pg_dump 16+). The block structure was still walked to its end, but no row was
   * counted: the data must be read by pg_restore before it counts as verified.
   */
  undecoded?: BlockCompression;
}

const BLOCK_TYPE = 0;
const BLOCK_ID = 1;
const CHUNK_LENGTH = 2;
const CHUNK = 3;
const LO_OID = 4;
/** Everything after the last expected block: counted, then reported. */
const TRAILING = 5;

/** Where each structural field sits: for tests that aim mutations at boundaries, and for diagnostics. */
export interface LayoutMark {
  kind: 'block' | 'chunk-length' | 'lo-oid' | 'entry' | 'data-start' | 'end';
  offset: number;
}

const INT_BYTES = 5; // sign byte + 4, the only integer size parseToc accepts

/** One compressed or plain data stream: a table's data, or one large object. */
interface DataStream {
  write(data: Buffer): Promise<void> | undefined;
  end(): Promise<void> | undefined;
}

/**
 * A streaming reader of pg_dump's custom archive format, written to like a file.
 * It holds the table of contents and one chunk header in memory, never a data block:
 * every block is read to its end (decompressed when zlib), every table's rows counted,
 * and any truncation, bad length, decompression error or byte after the end fails the
 * stream with an ArchiveError naming the offset and the entry.
 */
export class ArchiveReader extends Writable {
  private toc: ArchiveToc | undefined;
  /**
   * Until the table of contents is whole: the bytes from the last whole entry on (one
   * buffer, reused; the entries before it are parsed and dropped). Parsing from byte 0 at
   * every chunk, or keeping all of a 36 MB table of contents, cost seconds at 50,000 tables.
   */
  private head = Buffer.alloc(0);
  private headBytes = 0;
  /** The archive offset of head[0]. */
  private headBase = 0;
  private readonly tocProgress: TocProgress;
  private retryAt = 0;
  /** What the table of contents still lacked at the last attempt to parse it. */
  private waitingFor = 'the header';

  private state = BLOCK_TYPE;
  private readonly intBuf = Buffer.alloc(INT_BYTES);
  private intHave = 0;
  private chunkLeft = 0;
  private blockType = 0;
  private blockOffset = 0;
  private base = 0;
  private expected = new Map<number, TocEntry>();
  private readonly seen = new IdSet();
  /** Each data entry's place in the table of contents, and the place of the last block read. */
  private readonly position = new Map<number, number>();
  private lastPosition = -1;
  private lastEntry: TocEntry | undefined;
  private current: TocEntry | undefined;
  private stream: DataStream | undefined;
  private lines: CopyLines | undefined;
  /** Set while reading an uncompressed table's chunks (and no layout is being mapped): plainChunks() applies. */
  private plain: CopyLines | undefined;
  private readonly tables: TableData[] = [];
  private readonly largeObjects = { count: 0, bytes: 0 };
  private total = 0;
  private summaryValue: ArchiveSummary | undefined;
  private trailingFrom = 0;
  /** Filled only when constructed with `{ layout: true }`. */
  readonly layout: LayoutMark[] = [];
  private readonly mapLayout: boolean;

  /**
   * `layout`: map where each structural field sits. The table of contents keeps only the
   * entries read again ('used', toc.ts TocRetain), every entry where a layout is mapped;
   * every entry is checked either way.
   */
  constructor(options: { layout?: boolean } = {}) {
    super({ highWaterMark: 1 << 20 });
    this.mapLayout = options.layout ?? false;
    this.tocProgress = newTocProgress(this.mapLayout ? 'all' : 'used');
  }

  private mark(kind: LayoutMark['kind'], offset: number): void {
    if (this.mapLayout) this.layout.push({ kind, offset });
  }

  /** The result, once the stream finished without error. */
  get summary(): ArchiveSummary {
    if (!this.summaryValue) throw new Error('archive not read to its end yet');
    return this.summaryValue;
  }

  /** The header and entries as soon as they have been read (before the data). */
  get tableOfContents(): ArchiveToc | undefined {
    return this.toc;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.total += chunk.length;
    try {
      const wait = this.toc ? this.feed(chunk, 0) : this.collect(chunk);
      if (wait) wait.then(() => callback(), (error: Error) => callback(error));
      else callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finish().then(
      () => callback(),
      (error: Error) => callback(error),
    );
  }

  private collect(chunk: Buffer): Promise<void> | undefined {
    // What the parse has taken whole is dropped; the partial entry after it moves to the front.
    const drop = this.tocProgress.pos - this.headBase;
    if (drop > 0) {
      this.head.copyWithin(0, drop, this.headBytes);
      this.headBytes -= drop;
      this.headBase += drop;
    }
    if (this.headBytes + chunk.length > this.head.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.headBytes + chunk.length, this.head.length * 2, 256 << 10));
      this.head.copy(grown, 0, 0, this.headBytes);
      this.head = grown;
    }
    chunk.copy(this.head, this.headBytes);
    this.headBytes += chunk.length;
    // A field longer than what is here (a big definition) is waited for, not parsed toward again and again.
    if (this.headBase + this.headBytes < this.retryAt) return undefined;
    const buf = this.head.subarray(0, this.headBytes);
    try {
      this.toc = parseTocFrom(buf, this.tocProgress, this.headBase);
    } catch (error) {
      if (!(error instanceof NeedMoreInput)) throw error;
      this.retryAt = error.needed;
      this.waitingFor = error.what;
      if (this.total > MAX_TOC_BYTES) throw new ArchiveFormatError(`no end of the table of contents within ${MAX_TOC_BYTES} bytes`, { offset: this.total });
      return undefined;
    }
    const rest = Buffer.from(buf.subarray(this.toc.length - this.headBase));
    this.head = Buffer.alloc(0);
    for (const e of entriesWithData(this.toc.entries)) {
      this.position.set(e.dumpId, this.position.size);
      this.expected.set(e.dumpId, e);
    }
    this.base = this.toc.length;
    if (this.mapLayout) for (const e of this.toc.entries) this.mark('entry', e.entryOffset);
    this.mark('data-start', this.toc.length);
    return this.feed(rest, 0);
  }

  private at(i: number): { offset: number; entry?: string } {
    return { offset: this.base + i, ...(this.current ? { entry: describeEntry(this.current) } : {}) };
  }

  /** The block state machine; returns a promise only when a decompressor must drain or finish first. */
  private feed(buf: Buffer, from: number): Promise<void> | undefined {
    let i = from;
    const n = buf.length;
    while (i < n) {
      if (this.state === TRAILING) break;
      if (this.state === CHUNK_LENGTH && this.plain && this.intHave === 0) {
        i = this.plainChunks(buf, i);
        if (i >= n) break;
      }
      if (this.state === CHUNK) {
        const take = Math.min(this.chunkLeft, n - i);
        const data = buf.subarray(i, i + take);
        i += take;
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.state = CHUNK_LENGTH;
        const wait = this.stream!.write(data);
        if (wait) return wait.then(() => this.feed(buf, i));
        continue;
      }
      if (this.state === BLOCK_TYPE) {
        this.blockOffset = this.base + i;
        this.mark('block', this.blockOffset);
        this.blockType = buf[i]!;
        if (this.expected.size === this.seen.size) {
          this.state = TRAILING;
          this.trailingFrom = this.blockOffset;
          break;
        }
        if (this.blockType !== BLK_DATA && this.blockType !== BLK_BLOBS) {
          throw new ArchiveFormatError(`unrecognized data block type ${this.blockType}`, this.at(i));
        }
        i += 1;
        this.state = BLOCK_ID;
        continue;
      }
      // The remaining states read one integer, which may straddle writes.
      if (this.intHave === 0 && this.state !== BLOCK_ID) this.mark(this.state === LO_OID ? 'lo-oid' : 'chunk-length', this.base + i);
      let value: number;
      if (this.intHave === 0 && i + INT_BYTES <= n) {
        value = decodeInt(buf, i, 4);
        i += INT_BYTES;
      } else {
        const take = Math.min(INT_BYTES - this.intHave, n - i);
        buf.copy(this.intBuf, this.intHave, i, i + take);
        this.intHave += take;
        i += take;
        if (this.intHave < INT_BYTES) break;
        this.intHave = 0;
        value = decodeInt(this.intBuf, 0, 4);
      }
      const wait = this.onInt(value, i - INT_BYTES);
      if (wait) return wait.then(() => this.feed(buf, i));
    }
    this.base += n;
    return undefined;
  }

  /**
   * The hot path of an uncompressed archive, where pg_dump writes one chunk per row:
   * whole chunks inside this buffer are counted in place, with no slice and no state
   * change; the first chunk that straddles the buffer, or the end marker, returns to feed().
   */
  private plainChunks(buf: Buffer, from: number): number {
    const lines = this.plain!;
    const n = buf.length;
    let i = from;
    while (i + INT_BYTES <= n) {
      const magnitude = buf[i + 1]! | (buf[i + 2]! << 8) | (buf[i + 3]! << 16) | (buf[i + 4]! << 24);
      if (buf[i] !== 0 || magnitude <= 0) break;
      const end = i + INT_BYTES + magnitude;
      if (end > n) break;
      lines.pushRange(buf, i + INT_BYTES, end);
      i = end;
    }
    return i;
  }

  private onInt(value: number, i: number): Promise<void> | undefined {
    switch (this.state) {
      case BLOCK_ID: {
        const entry = this.expected.get(value);
        if (!entry) {
          throw new ArchiveFormatError(`data block for dump id ${value}, which no entry with data has`, { offset: this.blockOffset });
        }
        if (this.seen.has(value)) throw new ArchiveDuplicateBlockError(describeEntry(entry), { offset: this.blockOffset });
        // pg_restore reading from a pipe (how opsctl restore feeds it) asks for the blocks in
        // table-of-contents order and cannot go back: one that comes too early is skipped while
        // it looks for the next, and later "could not find block ID". Refused here as there.
        const at = this.position.get(value)!;
        if (at < this.lastPosition) {
          throw new ArchiveFormatError(`data block for ${describeEntry(entry)} comes after the block for ${describeEntry(this.lastEntry!)}, which the table of contents lists later: pg_restore reading from a pipe cannot go back for it`, { offset: this.blockOffset });
        }
        this.lastPosition = at;
        this.lastEntry = entry;
        this.seen.add(value);
        this.current = entry;
        if (this.blockType === BLK_DATA) this.startStream();
        this.state = this.blockType === BLK_DATA ? CHUNK_LENGTH : LO_OID;
        return undefined;
      }
      case CHUNK_LENGTH: {
        if (value < 0) throw new ArchiveFormatError(`chunk length ${value}`, this.at(i));
        if (value > 0) {
          this.chunkLeft = value;
          this.state = CHUNK;
          return undefined;
        }
        const wait = this.stream!.end();
        const done = () => this.endStream(i);
        if (wait) return wait.then(done);
        done();
        return undefined;
      }
      case LO_OID: {
        if (value === 0) {
          this.current = undefined;
          this.state = BLOCK_TYPE;
          return undefined;
        }
        this.largeObjects.count += 1;
        this.startStream();
        this.state = CHUNK_LENGTH;
        return undefined;
      }
      default:
        throw new Error(`reader in state ${this.state} read an integer`);
    }
  }

  private startStream(): void {
    const entry = this.current!;
    const isTable = this.blockType === BLK_DATA;
    this.lines = isTable ? new CopyLines() : undefined;
    const lines = this.lines;
    const sink = lines ? (b: Buffer) => lines.push(b) : (b: Buffer) => void (this.largeObjects.bytes += b.length);
    const compression = this.toc!.header.compression;
    if (compression === 'none') {
      if (lines && !this.mapLayout) this.plain = lines;
      this.stream = {
        write: (b) => void sink(b),
        end: () => undefined,
      };
    } else if (compression === 'gzip') {
      const at = { offset: this.blockOffset, entry: describeEntry(entry) };
      this.stream = inflating(sink, at);
    } else {
      // Walk the framing only: the bytes are counted as stored, never as decoded data.
      this.lines = undefined;
      this.stream = { write: () => undefined, end: () => undefined };
    }
  }

  private endStream(i: number): void {
    const entry = this.current!;
    const lines = this.lines;
    this.stream = undefined;
    this.lines = undefined;
    this.plain = undefined;
    if (this.blockType === BLK_BLOBS) {
      this.state = LO_OID;
      return;
    }
    if (lines) {
      if (lines.cutOff) throw new ArchiveFormatError('data ends inside a row', this.at(i));
      this.tables.push({
        dumpId: entry.dumpId,
        schema: entry.namespace,
        table: entry.tag,
        key: entry.copyStmt ? copyTarget(entry.copyStmt) : describeEntry(entry),
        rows: lines.rows,
        bytes: lines.bytes,
      });
    }
    this.current = undefined;
    this.state = BLOCK_TYPE;
  }

  private async finish(): Promise<void> {
    if (!this.toc) {
      if (this.total === 0) throw new ArchiveTruncatedError('the header (the archive is empty)', { offset: 0 });
      // The last writes may have stopped short of retryAt: one more attempt on everything there is.
      this.retryAt = 0;
      const wait = this.collect(Buffer.alloc(0));
      if (wait) await wait;
      if (!this.toc) throw new ArchiveTruncatedError(this.waitingFor, { offset: this.total });
    }
    if (this.state === TRAILING) throw new ArchiveTrailingBytesError(this.total - this.trailingFrom, { offset: this.trailingFrom });
    if (this.state !== BLOCK_TYPE || this.intHave !== 0) {
      const where = this.state === CHUNK ? `a data chunk (${this.chunkLeft} bytes short)` : this.state === BLOCK_ID ? 'a data block header' : this.state === LO_OID ? 'a large-object block' : 'a chunk length';
      throw new ArchiveTruncatedError(where, { offset: this.total, ...(this.current ? { entry: describeEntry(this.current) } : {}) });
    }
    const missing = [...this.expected.values()].filter((e) => !this.seen.has(e.dumpId)).map(describeEntry);
    if (missing.length > 0) throw new ArchiveMissingDataError(missing, { offset: this.total });
    const toc = this.toc!;
    // Needed only while blocks arrive; the summary outlives them (verify holds it to the end).
    this.expected.clear();
    this.position.clear();
    this.seen.clear();
    this.mark('end', this.total);
    this.summaryValue = {
      ...toc,
      tables: this.tables,
      largeObjects: this.largeObjects,
      bytes: this.total,
      ...(toc.header.compression === 'lz4' || toc.header.compression === 'zstd' ? { undecoded: toc.header.compression } : {}),
    };
  }
}

/**
 * A zlib stream per table or large object, as pg_dump writes them. Bytes after the
 * stream's end inside the same data are an error: pg_restore would loop on them.
 */
function inflating(sink: (b: Buffer) => void, at: { offset: number; entry: string }): DataStream {
  const z: Inflate = createInflate();
  let fed = 0;
  let failure: Error | undefined;
  z.on('data', sink);
  z.on('error', (error) => (failure = error));
  const fail = (error: Error) => new ArchiveDecompressionError(`the data block does not decompress (${error.message})`, at, error);
  return {
    write(data) {
      if (failure) throw fail(failure);
      fed += data.length;
      if (z.write(data)) return undefined;
      return new Promise<void>((resolve) => {
        const done = () => {
          z.off('drain', done);
          z.off('error', done);
          resolve();
        };
        z.on('drain', done);
        z.on('error', done);
      }).then(() => {
        if (failure) throw fail(failure);
      });
    },
    async end() {
      if (failure) throw fail(failure);
      z.end();
      await new Promise<void>((resolve) => {
        z.once('end', resolve);
        z.once('error', () => resolve());
      });
      if (failure) throw fail(failure);
      if (z.bytesWritten !== fed) throw new ArchiveDecompressionError(`${fed - z.bytesWritten} bytes after the end of the block's compressed data`, at);
    },
  };
}

/** Reads a whole archive from a stream; rejects with an ArchiveError (or the source's own error). */
export async function readArchive(source: Readable): Promise<ArchiveSummary> {
  const reader = new ArchiveReader();
  await pipeline(source, reader);
  return reader.summary;
}

export { ArchiveError };

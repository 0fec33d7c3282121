import { ArchiveBadDependencyError, ArchiveFormatError } from './errors.js';
import { IdSet } from './id-set.js';
import {
  COMPRESSION,
  FORMAT_CUSTOM,
  MAGIC,
  MAX_TOC_BYTES,
  MAX_MAJOR,
  MAX_VERSION,
  MIN_MAJOR,
  MIN_VERSION,
  OFFSET_NO_DATA,
  OFFSET_POS_NOT_SET,
  OFFSET_POS_SET,
  versionAtLeast,
  type BlockCompression,
} from './format.js';

export interface ArchiveHeader {
  version: [number, number, number];
  intSize: number;
  offSize: number;
  compression: BlockCompression;
  /** pg_dump's -Z level before 1.15; absent from 1.15 on (the algorithm is stored instead). */
  compressionLevel?: number;
  /** The dump's start as the fields pg_dump wrote (local time of the dumping machine). */
  created: { year: number; month: number; day: number; hour: number; minute: number; second: number; isDst: number };
  database: string | null;
  serverVersion: string | null;
  dumpVersion: string | null;
}

/** One table-of-contents entry with the fields pg_restore reads (ReadToc and custom's ReadExtraToc). */
export interface TocEntry {
  dumpId: number;
  hadDumper: boolean;
  tag: string | null;
  desc: string;
  section: number;
  /**
   * The definition and DROP statement are read past, not kept (checked only for ENCODING and
   * STDSTRINGS, as pg_restore does on reading); so are the table and object oids, tablespace,
   * access method and owner, which nothing here uses (checked for presence where pg_restore
   * needs them). Decoding 150,000 entries' worth of them was most of the parse and its garbage.
   */
  copyStmt: string | null;
  namespace: string | null;
  /** From 1.16 on. */
  relkind: number | null;
  /**
   * Kept with retain 'all' only: every dependency is read and checked as pg_restore reads it,
   * but nothing here orders by them, and an array per TABLE DATA entry was about 5 MB of a
   * 50,000-table verify's heap.
   */
  dependencies?: readonly number[];
  dataState: number;
  /** Where the entry itself starts in the archive. */
  entryOffset: number;
}

export interface ArchiveToc {
  header: ArchiveHeader;
  /** Every entry, or with `retain: 'used'` only the TABLE entries and those with a data block. */
  entries: TocEntry[];
  /** How many entries the table of contents has (all of them read and checked, whatever was kept). */
  count: number;
  /** Bytes of header plus table of contents: the first data block starts here. */
  length: number;
}

/** Thrown while parsing when the buffer ends before the field does; `needed` is the length that would do. */
export class NeedMoreInput extends Error {
  constructor(readonly needed: number, readonly what: string) {
    super(`need ${needed} bytes for ${what}`);
    this.name = 'NeedMoreInput';
  }
}

/**
 * Reads ints as pg_restore's ReadInt does: a sign byte, then intSize bytes little-endian
 * into a C int (so 4 bytes wrap to int32), negated when the sign byte is not 0.
 */
export function decodeInt(buf: Buffer, at: number, intSize: number): number {
  let v = 0;
  for (let b = 0; b < intSize; b += 1) v |= buf[at + 1 + b]! << (8 * b);
  return buf[at] !== 0 ? -v | 0 : v | 0;
}

/** The dependencies of every entry that has none: one array, not one each. */
const NO_DEPENDENCIES: readonly number[] = Object.freeze([]);

/** The `what` of a field of the entry being read (Cursor.named). */
const ENTRY = '';

/** Reads `buf`, which holds the archive from offset `base` on: errors and NeedMoreInput name offsets in the archive. */
class Cursor {
  pos = 0;
  intSize = 4;
  /** The entry being read (1-based) and how many there are: named in a message only when one is made. */
  entry = 0;
  count = 0;
  constructor(
    readonly buf: Buffer,
    readonly base = 0,
  ) {}

  /** The archive offset of the next byte. */
  get at(): number {
    return this.base + this.pos;
  }

  /**
   * `what` as messages name it: ENTRY is the entry being read. Built only for a message: a
   * string made per entry for messages never shown was 150,000 strings of garbage at 50,000 tables.
   */
  named(what: string): string {
    return what === ENTRY ? `table-of-contents entry ${this.entry} of ${this.count}` : what;
  }

  need(n: number, what: string): void {
    const end = this.pos + n;
    if (this.base + end > MAX_TOC_BYTES) throw new ArchiveFormatError(`${this.named(what)} claims ${n} bytes; header and table of contents are limited to ${MAX_TOC_BYTES}`, { offset: this.at });
    if (end > this.buf.length) throw new NeedMoreInput(this.base + end, this.named(what));
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  int(what: string): number {
    this.need(1 + this.intSize, what);
    const v = decodeInt(this.buf, this.pos, this.intSize);
    this.pos += 1 + this.intSize;
    return v;
  }

  str(what: string): string | null {
    const len = this.int(what);
    if (len < 0) return null;
    this.need(len, what);
    const s = this.text(this.pos, len);
    this.pos += len;
    return s;
  }

  /** The string of `len` bytes at `at` (already read past), as pg_restore reads it: a NUL ends it there. */
  text(at: number, len: number): string {
    const nul = this.buf.indexOf(0, at);
    const end = nul >= 0 && nul < at + len ? nul : at + len;
    return this.buf.toString('utf8', at, end);
  }

  /**
   * A string read past without decoding it: its length, -1 for null. A definition nobody
   * looks at (decoding 150,000 of them cost a second and their garbage), or a tag or COPY
   * statement decoded later with text(pos - length, length) if its entry is kept: whether
   * it is, is known only at the entry's end.
   */
  skipStr(what: string): number {
    const len = this.int(what);
    if (len < 0) return -1;
    this.need(len, what);
    this.pos += len;
    return len;
  }

  /** A string that must not be null (pg_restore dereferences it), read past. */
  skipRequiredStr(what: string): void {
    const at = this.at;
    if (this.skipStr(what) < 0) throw new ArchiveFormatError(`${this.named(what)} is missing (null string)`, { offset: at });
  }

  /**
   * A short string that repeats from entry to entry (desc, schema): the bytes are compared
   * with the strings already decoded for this field, and a match is handed back without a
   * new string. Anything with a byte that is not 7-bit ASCII, or a NUL, takes str().
   */
  internedStr(what: string, seen: string[]): string | null {
    const start = this.pos;
    const len = this.int(what);
    if (len < 0) return null;
    this.need(len, what);
    const buf = this.buf;
    const from = this.pos;
    if (len <= 64) {
      next: for (const s of seen) {
        if (s.length !== len) continue;
        for (let k = 0; k < len; k += 1) if (buf[from + k] !== s.charCodeAt(k)) continue next;
        this.pos += len;
        return s;
      }
    }
    this.pos = start;
    const s = this.str(what);
    if (s !== null && s.length === len && len <= 64 && seen.length < 64 && isAscii(buf, from, len)) seen.push(s);
    return s;
  }

  /** Whether the next string is exactly `text` (ASCII), read past either way; a null string is not. */
  strEquals(what: string, text: string): boolean {
    const len = this.int(what);
    if (len < 0) return false;
    this.need(len, what);
    const buf = this.buf;
    const from = this.pos;
    this.pos += len;
    // A NUL ends the string for pg_restore: "true\0..." is "true".
    const nul = buf.indexOf(0, from);
    const end = nul >= 0 && nul < from + len ? nul : from + len;
    if (end - from !== text.length) return false;
    for (let k = 0; k < text.length; k += 1) if (buf[from + k] !== text.charCodeAt(k)) return false;
    return true;
  }

  /**
   * A dependency as pg_restore 15 reads it: strtoul's prefix (blanks, a sign, digits),
   * refused (undefined) when 0 or beyond INT_MAX (a minus sign wraps to beyond). Found by the
   * differential test, not in the documentation. Read from the bytes, with no string made;
   * null when the string is null (the end of the list).
   */
  dependency(what: string): number | null | undefined {
    const len = this.int(what);
    if (len < 0) return null;
    this.need(len, what);
    const buf = this.buf;
    let k = this.pos;
    // pg_restore's string ends at a NUL; no prefix below reads one, so the length bounds it.
    const end = k + len;
    this.pos += len;
    while (k < end && (buf[k] === 0x20 || (buf[k]! >= 0x09 && buf[k]! <= 0x0d))) k += 1;
    let negative = false;
    if (k < end && (buf[k] === 0x2b || buf[k] === 0x2d)) {
      negative = buf[k] === 0x2d;
      k += 1;
    }
    while (k < end && buf[k] === 0x30) k += 1;
    const digitsFrom = k;
    let value = 0;
    while (k < end && buf[k]! >= 0x30 && buf[k]! <= 0x39) {
      value = value * 10 + (buf[k]! - 0x30);
      k += 1;
      if (k - digitsFrom > 10) return undefined;
    }
    if (k === digitsFrom || negative || value > 0x7fffffff) return undefined;
    return value;
  }
}

function isAscii(buf: Buffer, from: number, len: number): boolean {
  for (let k = from; k < from + len; k += 1) if (buf[k] === 0 || buf[k]! > 0x7f) return false;
  return true;
}

/**
 * Where a parse of the table of contents stands: the header and the entries read whole so
 * far, and the offset after the last of them. A parse that ran out of input resumes there
 * (the reader feeds the archive chunk by chunk: parsing from byte 0 at every attempt made a
 * 50,000-table TOC take seconds).
 */
export interface TocProgress {
  header: ArchiveHeader | undefined;
  count: number;
  /** Entries read whole so far (kept or not). */
  read: number;
  entries: TocEntry[];
  seen: IdSet;
  pos: number;
  /** Strings decoded so far for the fields that repeat (internedStr). */
  descs: string[];
  namespaces: string[];
  /** 'used': only TABLE entries and entries with a data block are kept (TocRetain). */
  retain: TocRetain;
}

/**
 * Which entries a parse keeps. Every entry is read and checked either way (pg_restore's
 * verdict does not depend on it); 'used' keeps only what reading the data and checking the
 * catalogue look at: the TABLE entries and the entries with a data block. An index,
 * constraint or sequence entry is a third of a 50,000-table dump's 150,000 entries (about
 * 10 MB of objects and strings) and most of a real schema's.
 */
export type TocRetain = 'all' | 'used';

export const newTocProgress = (retain: TocRetain = 'all'): TocProgress => ({ header: undefined, count: 0, read: 0, entries: [], seen: new IdSet(), pos: 0, descs: [], namespaces: [], retain });

/** Parses the header and the whole table of contents from the start of `buf`; NeedMoreInput if it is not all there yet. */
export function parseToc(buf: Buffer, retain: TocRetain = 'all'): ArchiveToc {
  return parseTocFrom(buf, newTocProgress(retain));
}

/**
 * Continues `state` over `buf` (the archive from byte 0, longer than at the last call):
 * the table of contents once it is all there, else NeedMoreInput with `state` at the last
 * whole entry. Entries are checked exactly as a parse from the start would check them.
 */
export function parseTocFrom(buf: Buffer, state: TocProgress, base = 0): ArchiveToc {
  if (base > state.pos || (!state.header && base !== 0)) throw new Error(`the buffer starts at ${base}, after where the parse stands (${state.pos})`);
  const c = new Cursor(buf, base);
  if (!state.header) {
    const { header, count } = parseHeader(c);
    state.header = header;
    state.count = count;
    state.pos = c.at;
  }
  const header = state.header;
  const { version, offSize } = header;
  c.intSize = header.intSize;
  c.pos = state.pos - base;
  const { count, entries, seen } = state;
  const all = state.retain === 'all';
  c.count = count;
  const what = ENTRY;
  // Each entry's dependencies are gathered here and copied out at their exact length: an
  // array grown by push keeps room for 17, 150 bytes an entry (22 MiB at 50,000 tables).
  const deps: number[] = [];
  for (let i = state.read; i < count; i += 1) {
    const entryOffset = c.at;
    c.entry = i + 1;
    const dumpId = c.int(what);
    if (dumpId <= 0) throw new ArchiveFormatError(`entry id ${dumpId} out of range in ${c.named(what)}`, { offset: entryOffset });
    if (seen.has(dumpId)) throw new ArchiveFormatError(`entry id ${dumpId} appears twice`, { offset: entryOffset });
    const hadDumper = c.int(what) !== 0;
    c.skipRequiredStr(what); // the table oid
    c.skipRequiredStr(what); // the oid
    const tagLen = c.skipStr(what);
    const tagAt = c.pos - tagLen;
    const descAt = c.pos;
    const desc = c.internedStr(what, state.descs);
    if (desc === null) throw new ArchiveFormatError(`${c.named(what)} is missing (null string)`, { offset: base + descAt });
    const section = c.int(what);
    // Only the entries pg_restore interprets as it reads them need their definition.
    const special = desc === 'ENCODING' || desc === 'STDSTRINGS';
    const defn = special ? c.str(what) : (c.skipStr(what), null);
    c.skipStr(what); // the DROP statement
    const copyLen = c.skipStr(what);
    const copyAt = c.pos - copyLen;
    const namespace = c.internedStr(what, state.namespaces);
    c.skipStr(what); // the tablespace
    c.skipStr(what); // the table access method
    const relkind = versionAtLeast(version, 1, 16) ? c.int(what) : null;
    c.skipStr(what); // the owner
    const withOidsAt = c.at;
    if (c.strEquals(what, 'true')) throw new ArchiveFormatError(`entry ${dumpId} is a table WITH OIDS, which PostgreSQL 12 and later cannot restore`, { offset: withOidsAt });
    deps.length = 0;
    // Whether this entry is kept is known only at its data flag: its dependencies are checked
    // as they come and gathered (a few numbers, reused) in case it is (retain 'all').
    for (;;) {
      const depAt = c.at;
      const id = c.dependency(what);
      if (id === null) break;
      if (id === undefined) {
        c.pos = depAt - base;
        throw new ArchiveBadDependencyError(c.str(what) ?? '', dumpId, { offset: depAt });
      }
      deps.push(id);
    }
    const flagAt = c.at;
    const dataState = c.byte(what);
    if (dataState !== OFFSET_POS_NOT_SET && dataState !== OFFSET_POS_SET && dataState !== OFFSET_NO_DATA) {
      throw new ArchiveFormatError(`unexpected data offset flag ${dataState} in entry ${dumpId}`, { offset: flagAt });
    }
    c.need(offSize, what);
    c.pos += offSize;
    if (special) checkSpecialEntry(desc, defn, { offset: entryOffset, entry: `${desc} (dump id ${dumpId})` });
    if (all || desc === 'TABLE' || hasDataBlock(hadDumper, dataState)) {
      entries.push({
        dumpId,
        hadDumper,
        tag: tagLen < 0 ? null : c.text(tagAt, tagLen),
        desc,
        section,
        copyStmt: copyLen < 0 ? null : c.text(copyAt, copyLen),
        namespace,
        relkind,
        dataState,
        entryOffset,
        ...(all ? { dependencies: deps.length === 0 ? NO_DEPENDENCIES : deps.slice() } : {}),
      });
    }
    seen.add(dumpId);
    state.read = i + 1;
    state.pos = c.at;
  }
  // The ids were kept for finding one twice; once the table of contents is whole they have
  // served (150,000 of them at 50,000 tables).
  seen.clear();
  return { header, entries, count, length: c.at };
}


/** The archive header, up to and including the entry count. */
function parseHeader(c: Cursor): { header: ArchiveHeader; count: number } {
  const buf = c.buf;
  c.need(MAGIC.length, 'the magic string');
  if (buf.compare(MAGIC, 0, MAGIC.length, 0, MAGIC.length) !== 0) throw new ArchiveFormatError('not a pg_dump custom-format archive (no PGDMP magic)', { offset: 0 });
  c.pos = MAGIC.length;
  const version: [number, number, number] = [c.byte('the version'), c.byte('the version'), c.byte('the version')];
  if (!versionAtLeast(version, MIN_VERSION[0], MIN_VERSION[1]) || versionAtLeast(version, MAX_VERSION[0], MAX_VERSION[1] + 1)) {
    throw new ArchiveFormatError(`archive version ${version.join('.')} is not one this reader knows (${MIN_VERSION.join('.')} to ${MAX_VERSION.join('.')}: pg_dump ${MIN_MAJOR} to ${MAX_MAJOR})`, { offset: 5 });
  }
  const intSize = c.byte('the integer size');
  const offSize = c.byte('the offset size');
  // Every pg_dump since 7.x writes 4 and 8; other sizes are corruption in practice and
  // ReadInt's C arithmetic is undefined for them, so they are refused, not guessed.
  if (intSize !== 4) throw new ArchiveFormatError(`integer size ${intSize} (pg_dump writes 4)`, { offset: 8 });
  if (offSize !== 8) throw new ArchiveFormatError(`offset size ${offSize} (pg_dump writes 8)`, { offset: 9 });
  c.intSize = intSize;
  const format = c.byte('the format');
  if (format !== FORMAT_CUSTOM) throw new ArchiveFormatError(`format ${format} is not the custom format (${FORMAT_CUSTOM})`, { offset: 10 });

  let compression: BlockCompression;
  let compressionLevel: number | undefined;
  if (versionAtLeast(version, 1, 15)) {
    const at = c.pos;
    const algorithm = c.byte('the compression algorithm');
    const name = COMPRESSION[algorithm];
    if (name === undefined) throw new ArchiveFormatError(`compression algorithm ${algorithm} is unknown`, { offset: at });
    compression = name;
  } else {
    compressionLevel = c.int('the compression level');
    compression = compressionLevel === 0 ? 'none' : 'gzip';
  }
  const second = c.int('the creation time');
  const minute = c.int('the creation time');
  const hour = c.int('the creation time');
  const day = c.int('the creation time');
  const month = c.int('the creation time') + 1;
  const year = c.int('the creation time') + 1900;
  const isDst = c.int('the creation time');
  const database = c.str('the database name');
  const serverVersion = c.str('the server version');
  const dumpVersion = c.str('the pg_dump version');
  const header: ArchiveHeader = {
    version,
    intSize,
    offSize,
    compression,
    ...(compressionLevel !== undefined ? { compressionLevel } : {}),
    created: { year, month, day, hour, minute, second, isDst },
    database,
    serverVersion,
    dumpVersion,
  };

  // pg_restore loops `for (i = 0; i < tocCount; i++)`: a negative count is an empty
  // table of contents, and whatever follows is then bytes after the archive's end.
  return { header, count: Math.max(0, c.int('the entry count')) };
}

/**
 * pg_restore interprets three entries as soon as it reads them (processEncodingEntry,
 * processStdStringsEntry) and stops on a value it cannot use; so does this reader.
 */
function checkSpecialEntry(desc: string, defn: string | null, at: { offset: number; entry: string }): void {
  if (desc === 'ENCODING') {
    const m = /'([^']*)'/.exec(defn ?? '');
    if (!m) throw new ArchiveFormatError(`invalid ENCODING item: ${defn ?? '(null)'}`, at);
    if (!isKnownEncoding(m[1]!)) throw new ArchiveFormatError(`unrecognized encoding "${m[1]!}"`, at);
  } else if (desc === 'STDSTRINGS') {
    const quote = (defn ?? '').indexOf("'");
    const rest = quote < 0 ? '' : defn!.slice(quote);
    if (!rest.startsWith("'on'") && !rest.startsWith("'off'")) throw new ArchiveFormatError(`invalid STDSTRINGS item: ${defn ?? '(null)'}`, at);
  }
}

/** The names pg_char_to_encoding accepts (encnames.c), compared as it does: lower case, letters and digits only. */
const ENCODING_NAMES = new Set(
  [
    'abc', 'alt', 'big5', 'euccn', 'eucjis2004', 'eucjp', 'euckr', 'euctw', 'gb18030', 'gbk', 'iso88591', 'iso885910', 'iso885913', 'iso885914',
    'iso885915', 'iso885916', 'iso88592', 'iso88593', 'iso88594', 'iso88595', 'iso88596', 'iso88597', 'iso88598', 'iso88599', 'johab', 'koi8',
    'koi8r', 'koi8u', 'latin1', 'latin10', 'latin2', 'latin3', 'latin4', 'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'mskanji', 'muleinternal',
    'shiftjis', 'shiftjis2004', 'sjis', 'sqlascii', 'tcvn', 'tcvn5712', 'uhc', 'unicode', 'utf8', 'vscii', 'win', 'win1250', 'win1251', 'win1252',
    'win1253', 'win1254', 'win1255', 'win1256', 'win1257', 'win1258', 'win866', 'win874', 'win932', 'win936', 'win949', 'win950', 'windows1250',
    'windows1251', 'windows1252', 'windows1253', 'windows1254', 'windows1255', 'windows1256', 'windows1257', 'windows1258', 'windows866',
    'windows874', 'windows932', 'windows936', 'windows949', 'windows950',
  ],
);

function isKnownEncoding(name: string): boolean {
  return ENCODING_NAMES.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/** The entries pg_restore reads a data block for: a dumper was recorded and the offset flag does not say "no data". */
export function entriesWithData(entries: readonly TocEntry[]): TocEntry[] {
  return entries.filter((e) => hasDataBlock(e.hadDumper, e.dataState));
}

/** Whether pg_restore reads a data block for an entry: a dumper was recorded and the offset flag does not say "no data". */
function hasDataBlock(hadDumper: boolean, dataState: number): boolean {
  return hadDumper && dataState !== OFFSET_NO_DATA;
}

/** `"my s"."ta ble" (TABLE DATA, dump id 3349)`: how failures name an entry. */
export function describeEntry(e: TocEntry): string {
  const name = e.namespace ? `${e.namespace}.${e.tag ?? ''}` : (e.tag ?? '');
  return `${name} (${e.desc}, dump id ${e.dumpId})`;
}

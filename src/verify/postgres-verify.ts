import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decoder } from '../backup/codec.js';
import { VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type LevelResult, type Manifest, type StreamCodec, type Verification } from '../backup/manifest.js';
import { writeRecord, type BackupEntry } from '../backup/catalog.js';
import { VerifyInterruptedError } from './errors.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { ArchiveError } from '../pg-archive/errors.js';
import { IdSet } from '../pg-archive/id-set.js';
import { ArchiveReader, type ArchiveSummary, type TableData } from '../pg-archive/reader.js';
import type { ArchiveToc } from '../pg-archive/toc.js';
import { parseQualifiedName } from '../postgres/identifiers.js';
import { startTool, type RunningTool } from '../process/tool.js';
import { executableExists, toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { prepareProperty } from '../util/prepared-json.js';
import { HashingStream, Tee } from '../util/streams.js';
import { CopyRowCounter } from './copy-counter.js';
import { TableListing } from './table-listing.js';
import { runningPgRestoreVersion } from './pg-restore-version.js';
import { pgRestoreTooOld } from '../pg-archive/versions.js';
import { rejection, wasInterrupted } from '../process/interrupted.js';
import { RESTORE_SCRIPT_OPTIONS } from '../restore/pg-restore-options.js';

/** Who reads the data for level 3: the native archive reader (default), or pg_restore's whole script as before. */
export type FullReader = 'native' | 'pg_restore';

export interface VerifyDeps {
  repo: Repository;
  log: Log;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  onProgress?: ((bytes: number) => void) | undefined;
  fullReader?: FullReader | undefined;
  /** Aborted: the run stops and records nothing (VerifyInterruptedError). */
  signal?: AbortSignal | undefined;
}

/** Tables whose absence from the archive's catalogue fails level 2, beyond those the manifest recorded. */
export interface VerifyExpectations {
  extraTables?: string[];
}

interface Table {
  schema: string;
  name: string;
}

/**
 * Verification levels 1-3 of DESIGN.md in one streaming pass, no temporary file: the
 * stored bytes are hashed (1); the decoded archive feeds the native reader, whose table
 * of contents is checked against the manifest (2) and which reads every data block to
 * its end and counts every table's rows (3); and `pg_restore --list`, the independent
 * second reader of the table of contents, whose verdict must agree (2).
 */
export async function verifyPostgresBackup(entry: BackupEntry, deps: VerifyDeps, expect: VerifyExpectations = {}): Promise<Verification> {
  const manifest = entry.manifest;
  if (!manifest) throw new Error(`backup ${entry.id} has no manifest`);
  const env = deps.env ?? process.env;
  const now = deps.now ?? (() => new Date());
  const started = now();
  const pgRestore = toolPath('pg_restore', env);
  const codec = manifest.payload.streamCodec;
  const useNative = (deps.fullReader ?? 'native') === 'native';

  const hasher = new HashingStream(deps.onProgress);
  // --list's bytes need no JavaScript: the zstd binary hands them to pg_restore itself. Node's
  // decoder only for a tiny payload, where the process start costs more (a 2-table dump
  // verified 20 ms sooner, median of 15), or where there is no binary. At 50,000 tables (1.3
  // MB stored, 36 MB decoded) the bytes through Node cost 0.25 s and 25 MiB of peak RSS.
  const stored = manifest.payload.bytes;
  // Looked up once for both branches: whether each is fed by Node's zstd or the binary's.
  const zstdBinary = codec === 'zstd' && executableExists(toolPath('zstd'));
  const list = restoreBranch('pg_restore --list', pgRestore, LIST_ARGS, codec, env, !zstdBinary || stored < LIST_IN_PROCESS);
  const listed = new TableListing();
  list.tool.child.stdout!.on('data', (c: Buffer) => listed.push(c));
  // Once pg_restore --list has exited nothing reads its branch: closed now, so the tee never
  // waits on it (a stall with no handle left ends Node with exit 13: via s3rver with two busy
  // loops beside it, 2 of 20 runs without this line, 0 of 30 with it).
  list.tool.done.then(() => list.kill(), () => list.kill());
  const native = nativeBranch(codec, !zstdBinary || stored < SMALL_PAYLOAD);
  const script = useNative ? undefined : scriptBranch(pgRestore, codec, env);
  // The version of the binary that runs --list, asked once the wrapper has started it.
  const toolVersion = runningPgRestoreVersion(list.tool, pgRestore, env).catch((error: unknown) => `unavailable: ${errorMessage(error)}`);
  // What needs only the native reader is made as soon as it has finished: level 2's plan and
  // the row counts' JSON. pg_restore --list usually still runs then, on the other core, while
  // this process waits for it (at 50,000 tables for 0.15-0.25 s); made after it, they were
  // about 0.1 s more on the way to the verdict.
  const early = native.done.then(
    () => prepareNative(native.reader, manifest, expect, useNative),
    () => prepareNative(native.reader, manifest, expect, false),
  );
  // Awaited only on the way to a verdict; an interrupted run leaves it.
  early.catch(() => undefined);

  let readError: unknown;
  try {
    const source = await deps.repo.get(manifest.payload.key, deps.signal ? { signal: deps.signal } : {});
    await pipeline(source, hasher, new Tee([list.input, native.input, ...(script ? [script.input] : [])]));
  } catch (error) {
    readError = error;
    // Whatever broke, every process downstream must end, or its exit would be awaited forever.
    list.kill();
    native.kill();
    script?.kill();
  }
  // --list stops reading after the table of contents, so its decoder may die of a broken
  // pipe: only pg_restore's own verdict counts on that branch.
  const [listOutcome, nativeOutcome] = await Promise.allSettled([list.tool.done, native.done]);
  list.decoded.catch(() => undefined);

  if (wasInterrupted(deps.signal, readError, rejection(listOutcome), rejection(nativeOutcome))) {
    script?.kill();
    throw new VerifyInterruptedError(`postgres/${entry.name}/${entry.id}`, readError);
  }
  const levels: LevelResult[] = [checksumLevel(manifest, hasher, readError)];
  listed.end();
  const prepared = await early;
  // --list refused the archive: where that is because this pg_restore is older than the
  // pg_dump that wrote it, level 2 says so and what to run (a restore would refuse it alike).
  const tooOld = listOutcome.status === 'rejected' ? pgRestoreTooOld(await toolVersion, manifest.tools.pg_dump) : undefined;
  levels.push(catalogueLevel(manifest, expect, native.reader.tableOfContents, nativeOutcome, listOutcome, listed, prepared.plan, tooOld));
  let full: FullRead;
  if (script) full = await script.result();
  else if (nativeOutcome.status === 'fulfilled' && native.reader.summary.undecoded) {
    // Block compression the native reader cannot decode (lz4, zstd inside pg_dump 16+
    // archives): never passed unread. pg_restore reads it in a second pass.
    const second = scriptBranch(pgRestore, codec, env);
    try {
      await pipeline(await deps.repo.get(manifest.payload.key), second.input);
    } catch {
      second.kill();
    }
    full = await second.result(`blocks compressed with ${native.reader.summary.undecoded}, read by pg_restore: `);
  } else full = nativeFullRead(nativeOutcome, native.summaryOrUndefined());
  levels.push(full.level);

  // The second reader may have been stopped by the same signal after the first pass ended.
  if (wasInterrupted(deps.signal, full.error)) throw new VerifyInterruptedError(`postgres/${entry.name}/${entry.id}`);
  const tools: Record<string, string> = { pg_restore: await toolVersion };
  const counts = full.counts;
  // Prepared only for the native reader's tables; counts pg_restore's script gave are a Map, built as an object.
  const json = prepared.rows?.source === counts ? prepared.rows.json : undefined;
  const verification = summarize(entry, manifest, levels, started, now(), tools, json === undefined ? sortedRecord(counts) : {});
  if (json !== undefined) prepareProperty(verification, 'rowCounts', json, () => sortedRecord(counts));
  await writeRecord(deps.repo, 'postgres', entry.name, entry.id, VERIFICATION, verification);
  deps.log[verification.ok ? 'info' : 'error'](`verify postgres/${entry.name}/${entry.id}: ${verification.ok ? 'ok' : verification.failure}`, {
    levelPassed: verification.levelPassed,
  });
  return verification;
}

interface NativePrepared {
  plan?: CataloguePlan;
  /** The native reader's tables and their JSON (countsJson). */
  rows?: { source: readonly TableData[]; json: string | undefined };
}

/** Level 2's plan once the table of contents is read; the row counts' JSON when the native reader read the data to its end. */
function prepareNative(reader: ArchiveReader, manifest: Manifest, expect: VerifyExpectations, withRows: boolean): NativePrepared {
  const toc = reader.tableOfContents;
  const out: NativePrepared = toc ? { plan: planCatalogue(manifest, expect, toc) } : {};
  const summary = withRows ? reader.summary : undefined;
  if (summary && !summary.undecoded) out.rows = { source: summary.tables, json: countsJson(summary.tables) };
  return out;
}

/**
 * The counts as an object with its keys in code-unit order (the record reads the same from run
 * to run). At 50,000 tables, sorting [key, count] pairs with localeCompare and Object.fromEntries
 * took about 180 ms; the keys sorted natively and assigned in order, about 70. The native
 * reader's tables come in table-of-contents order, which pg_dump sorts by name, so usually
 * already in key order: then they are assigned as they are, with no Map, key list or sort.
 */
function sortedRecord(counts: Map<string, number> | readonly TableData[]): Record<string, number> {
  const record: Record<string, number> = {};
  if (!(counts instanceof Map)) {
    if (inKeyOrder(counts)) {
      for (const t of counts) record[t.key] = t.rows;
      return record;
    }
    // As a Map, as before: a key read twice keeps its last count.
    counts = new Map(counts.map((t) => [t.key, t.rows]));
  }
  for (const key of [...counts.keys()].sort()) record[key] = counts.get(key)!;
  return record;
}

/**
 * The counts' JSON as JSON.stringify(sortedRecord(counts), null, 2) writes it, made straight from
 * the native reader's tables (about 35 ms and 5 MiB at 50,000 tables, against 70 ms and 9 MiB
 * for the object, then each JSON.stringify of it): when they are already in key order and no
 * key is an array index (an object lists those first, whatever their order). Otherwise undefined.
 */
export function countsJson(counts: readonly TableData[]): string | undefined {
  if (!inKeyOrder(counts)) return undefined;
  if (counts.length === 0) return '{}';
  const lines = new Array<string>(counts.length);
  for (let i = 0; i < counts.length; i += 1) {
    const t = counts[i]!;
    if (isArrayIndex(t.key)) return undefined;
    lines[i] = `${JSON.stringify(t.key)}: ${JSON.stringify(t.rows)}`;
  }
  return `{\n  ${lines.join(',\n  ')}\n}`;
}

/** A canonical array index ("0" to "4294967294"): such a key comes first in an object's key order. */
function isArrayIndex(key: string): boolean {
  const c = key.charCodeAt(0);
  if (!(c >= 0x30 && c <= 0x39)) return false;
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 4294967295;
}

/** Keys strictly increasing in code-unit order (so also none twice). */
function inKeyOrder(tables: readonly TableData[]): boolean {
  for (let i = 1; i < tables.length; i += 1) if (!(tables[i - 1]!.key < tables[i]!.key)) return false;
  return true;
}

interface RestoreBranch {
  tool: RunningTool;
  input: Writable;
  /** Settles when the decoder (if any) finished. */
  decoded: Promise<void>;
  kill(): void;
}

function restoreBranch(name: string, command: string, args: string[], codec: StreamCodec, env: NodeJS.ProcessEnv, inProcess = false): RestoreBranch {
  const dec = decoder(codec, { inProcess });
  // A decoder in this process pipes into pg_restore's stdin; a zstd child hands its stdout over at the OS level.
  const inline = dec !== null && !dec.processOutput;
  const tool = startTool(name, command, args, { stdin: dec && !inline ? dec.output : 'pipe', env });
  if (dec && inline) {
    dec.output.pipe(tool.child.stdin!);
    tool.child.stdin!.on('error', () => dec.kill());
    // .pipe() does not pass a failure on: a decoder that fails must close pg_restore's stdin,
    // or pg_restore waits for the rest forever (seen with Node 24's in-process zstd).
    dec.output.once('error', () => tool.child.stdin!.destroy());
  }
  const input = dec?.input ?? tool.child.stdin!;
  const decoded = dec?.done ?? Promise.resolve();
  // --list stops reading after the table of contents and its decoder is then killed: the
  // rejection comes early and is looked at (or not) later, so it is marked handled now.
  decoded.catch(() => undefined);
  return {
    tool,
    input,
    decoded,
    kill() {
      dec?.kill();
      input.destroy();
      tool.kill();
    },
  };
}

interface NativeBranch {
  reader: ArchiveReader;
  input: Writable;
  done: Promise<void>;
  summaryOrUndefined(): ArchiveSummary | undefined;
  kill(): void;
}

/**
 * Stored bytes below which the native reader is fed by Node's zstd: starting a process costs
 * more than it saves (a one-table dump verified 18 ms sooner, median of 15).
 */
const SMALL_PAYLOAD = 8 << 20;
/**
 * pg_restore reads the whole table of contents either way (its verdict, the exit status, is the
 * same: every check is in the read, before a line is printed), but prints only the pre-data
 * entries: every TABLE line, without the TABLE DATA, index and constraint lines that level 2
 * never looks at. At 50,000 tables 50,015 lines instead of 150,015, read and kept as they come.
 * pg_dump writes every TABLE entry in pre-data; a table of contents that puts one elsewhere
 * fails level 2 ("the two readers disagree"), though a restore of every section would take it.
 */
const LIST_ARGS = ['--list', '--section=pre-data'];
/** Stored bytes below which pg_restore --list is fed by Node's zstd, not the binary's. */
const LIST_IN_PROCESS = 256 << 10;

/**
 * The decoded archive into the native reader; a decoder failure is reported as such, not as
 * the truncation the reader then sees. zstd is decoded by the binary where there is one: it
 * runs beside this process, where Node 24's own decoder takes turns with the reader (a 256 MiB
 * payload verified in 2.27-2.57 s with the binary, 2.80-3.28 s without; 64 MiB, 5,000 and
 * 50,000 tables within noise). Node's own serves where no binary is (the Lambda without its layer).
 */
function nativeBranch(codec: StreamCodec, inProcess: boolean): NativeBranch {
  const reader = new ArchiveReader();
  const dec = decoder(codec, { inProcess });
  let killed = false;
  if (dec) {
    dec.output.pipe(reader);
    dec.done.catch((error: unknown) => {
      if (!killed) reader.destroy(new DecodeFailed(error));
    });
  }
  const done = new Promise<void>((resolve, reject) => {
    // The archive's end is not the payload's: the decoder must also end cleanly (bytes after
    // the compressed stream make restore refuse the payload, so verify fails it too).
    reader.on('finish', () => (dec ? dec.done.then(resolve, (error: unknown) => reject(new DecodeFailed(error))) : resolve()));
    reader.on('error', (error) => {
      if (!dec || killed || error instanceof DecodeFailed) return reject(error);
      // A reader that saw its input end early usually saw the decoder fail: ask it first.
      if (!(error instanceof ArchiveError) || error.code !== 'ARCHIVE_TRUNCATED') {
        killed = true;
        dec.kill();
      }
      dec.done.then(
        () => reject(error),
        (decError: unknown) => reject(killed ? error : new DecodeFailed(decError)),
      );
    });
  });
  // Settled later, with allSettled; until then a rejection is expected, not unhandled.
  done.catch(() => undefined);
  return {
    reader,
    input: dec?.input ?? reader,
    done,
    summaryOrUndefined: () => {
      try {
        return reader.summary;
      } catch {
        return undefined;
      }
    },
    kill() {
      killed = true;
      dec?.kill();
      reader.destroy();
    },
  };
}

class DecodeFailed extends Error {
  constructor(cause: unknown) {
    super(`decompression failed: ${errorMessage(cause)}`, { cause });
    this.name = 'DecodeFailed';
  }
}

interface FullRead {
  level: LevelResult;
  /** Each table's rows: the native reader's tables as read, or the script's counts. */
  counts: Map<string, number> | readonly TableData[];
  /** What stopped a failed read: a tool stopped from outside is an interruption, not a verdict. */
  error?: unknown;
}

const LEVEL3 = { level: 3, name: LEVEL_NAMES[2] };

function nativeFullRead(outcome: PromiseSettledResult<void>, summary: ArchiveSummary | undefined): FullRead {
  if (outcome.status === 'rejected' || !summary) {
    const reason = outcome.status === 'rejected' ? outcome.reason : new Error('archive not read to its end');
    return { level: { ...LEVEL3, ok: false, detail: reason instanceof ArchiveError || reason instanceof DecodeFailed ? reason.message : `archive unreadable: ${errorMessage(reason)}` }, counts: new Map(), error: reason };
  }
  const rows = summary.tables.reduce((a, t) => a + t.rows, 0);
  const lo = summary.largeObjects.count > 0 ? `, ${summary.largeObjects.count} large objects (${summary.largeObjects.bytes} bytes)` : '';
  return {
    level: { ...LEVEL3, ok: true, detail: `${summary.tables.length} tables, ${rows} rows${lo} decoded (archive ${summary.header.version.join('.')}, blocks ${summary.header.compression})` },
    counts: summary.tables,
  };
}

/** The earlier level 3: pg_restore writes the whole script, whose COPY blocks are counted here. */
function scriptBranch(pgRestore: string, codec: StreamCodec, env: NodeJS.ProcessEnv): RestoreBranch & { result(prefix?: string): Promise<FullRead> } {
  const branch = restoreBranch('pg_restore', pgRestore, [...RESTORE_SCRIPT_OPTIONS, '--file=-'], codec, env);
  const counter = new CopyRowCounter();
  const counted = pipeline(branch.tool.child.stdout!, counter);
  return {
    ...branch,
    async result(prefix = '') {
      const [full, dec] = await Promise.allSettled([branch.tool.done.then(() => counted), branch.decoded]);
      const fail = (detail: string, error?: unknown): FullRead => ({ level: { ...LEVEL3, ok: false, detail: prefix + detail }, counts: counter.counts, error });
      if (dec.status === 'rejected') return fail(`decompression failed: ${errorMessage(dec.reason)}`, dec.reason);
      if (full.status === 'rejected') return fail(errorMessage(full.reason), full.reason);
      if (!counter.balanced) return fail('archive ended inside a COPY block');
      const rows = [...counter.counts.values()].reduce((a, b) => a + b, 0);
      return { level: { ...LEVEL3, ok: true, detail: `${prefix}${counter.counts.size} tables, ${rows} rows decoded` }, counts: counter.counts };
    },
  };
}

function checksumLevel(manifest: Manifest, hasher: HashingStream, readError: unknown): LevelResult {
  const base = { level: 1, name: LEVEL_NAMES[0] };
  if (readError && hasher.bytes === 0) return { ...base, ok: false, detail: `payload unreadable: ${errorMessage(readError)}` };
  const sha = hasher.digest();
  if (hasher.bytes !== manifest.payload.bytes) {
    return { ...base, ok: false, detail: `size ${hasher.bytes} bytes, manifest says ${manifest.payload.bytes}` };
  }
  if (sha !== manifest.payload.sha256) return { ...base, ok: false, detail: `sha256 ${sha} differs from the manifest's ${manifest.payload.sha256}` };
  return { ...base, ok: true, detail: `${hasher.bytes} bytes, sha256 ${sha.slice(0, 16)}…` };
}

/** `schema.name` of the first ten, and how many more. */
const shown = (tables: Table[]) => {
  const names = tables.map((t) => `${t.schema}.${t.name}`);
  return `${names.slice(0, 10).join(', ')}${names.length > 10 ? ` (+${names.length - 10})` : ''}`;
};

/** schema -> name -> what is kept for it: lookups by the strings already there, no key made per table. */
type ByName<T> = Map<string, Map<string, T>>;

function byNameGet<T>(map: ByName<T>, schema: string, name: string): T | undefined {
  return map.get(schema)?.get(name);
}

function byNameSet<T>(map: ByName<T>, schema: string, name: string, value: T): void {
  let names = map.get(schema);
  if (!names) map.set(schema, (names = new Map()));
  names.set(name, value);
}

/** --list prints names through sanitize_line: a line break inside a name becomes a space. */
const sanitized = (s: string) => (s.includes('\n') || s.includes('\r') ? s.replace(/[\r\n]/g, ' ') : s);

/**
 * The expected tables --list shows anywhere, as the earlier search did: a TABLE line (not
 * TABLE DATA or TABLE ATTACH) whose text after "TABLE " starts with "<schema> <name> ".
 * pg_restore prints names raw, so a line cannot be split on spaces: each line is looked up
 * at its few spaces. Used only for tables the dump-id match did not find (normally none).
 */
function listedAnywhere(listing: TableListing, tables: Table[]): Set<Table> {
  const byPrefix = new Map<string, Table[]>();
  for (const t of tables) {
    const prefix = `${sanitized(t.schema)} ${sanitized(t.name)} `;
    const list = byPrefix.get(prefix);
    if (list) list.push(t);
    else byPrefix.set(prefix, [t]);
  }
  const found = new Set<Table>();
  for (const text of listing.texts) {
    const m = /^(?!DATA |ATTACH )(.+)$/.exec(text);
    if (!m) continue;
    const rest = m[1]!;
    for (let i = rest.indexOf(' '); i >= 0; i = rest.indexOf(' ', i + 1)) for (const t of byPrefix.get(rest.slice(0, i + 1)) ?? []) found.add(t);
  }
  return found;
}

/**
 * Level 2's half that needs only the native reader: each expected table, once, in the
 * manifest's order then the extras', with the dump ids the table of contents gives it by
 * exact (schema, name), or none.
 */
export interface CataloguePlan {
  /** TABLE entries in the table of contents, each (schema, name) once. */
  tocTables: number;
  tables: Table[];
  /** Per table: its dump id, its ids where the table of contents names it more than once, or undefined where it lacks it. */
  ids: (number | number[] | undefined)[];
}

export function planCatalogue(manifest: Manifest, expect: VerifyExpectations, toc: ArchiveToc): CataloguePlan {
  // A table's dump id, or its ids where the table of contents names it more than once: no
  // array per table (50,000 of them were most of level 2's garbage).
  const inToc: ByName<number | number[]> = new Map();
  let tocTables = 0;
  for (const e of toc.entries) {
    if (e.desc !== 'TABLE' || e.namespace === null || e.tag === null) continue;
    const ids = byNameGet(inToc, e.namespace, e.tag);
    if (ids === undefined) {
      byNameSet(inToc, e.namespace, e.tag, e.dumpId);
      tocTables += 1;
    } else if (typeof ids === 'number') byNameSet(inToc, e.namespace, e.tag, [ids, e.dumpId]);
    else ids.push(e.dumpId);
  }
  // Each table once: one the table of contents has is known by its first dump id, one it lacks by name.
  const counted = new IdSet();
  const lacking: ByName<true> = new Map();
  const plan: CataloguePlan = { tocTables, tables: [], ids: [] };
  const add = (t: Table) => {
    const ids = byNameGet(inToc, t.schema, t.name);
    if (ids === undefined) {
      if (byNameGet(lacking, t.schema, t.name)) return;
      byNameSet(lacking, t.schema, t.name, true);
    } else {
      const first = typeof ids === 'number' ? ids : ids[0]!;
      if (counted.has(first)) return;
      counted.add(first);
    }
    plan.tables.push(t);
    plan.ids.push(ids);
  };
  for (const t of manifest.tables ?? []) add(t);
  for (const extra of expect.extraTables ?? []) add(parseQualifiedName(extra));
  return plan;
}

/**
 * Level 2's other half: pg_restore --list is asked the same and must agree, so one reader's
 * mistake cannot pass a backup alone. --list is matched first by the dump id the table of
 * contents gives (its line must name the same schema and table), then, for any table that
 * leaves unfound, anywhere in the listing.
 */
export function judgeCatalogue(plan: CataloguePlan, listing: TableListing): LevelResult {
  const base = { level: 2, name: LEVEL_NAMES[1] };
  // The line --list gives the dump id must start "<schema> <name> " after "TABLE ".
  const lineNames = (id: number, t: Table) => {
    const text = listing.byId.get(id);
    if (text === undefined) return false;
    const schema = sanitized(t.schema);
    const name = sanitized(t.name);
    const nameAt = schema.length + 1;
    return text.startsWith(schema) && text.charCodeAt(nameAt - 1) === 32 && text.startsWith(name, nameAt) && text.charCodeAt(nameAt + name.length) === 32;
  };
  const missingNative: Table[] = [];
  const unmatched: Table[] = [];
  for (let i = 0; i < plan.tables.length; i += 1) {
    const t = plan.tables[i]!;
    const ids = plan.ids[i];
    if (ids === undefined) {
      missingNative.push(t);
      unmatched.push(t);
    } else if (typeof ids === 'number' ? !lineNames(ids, t) : !ids.some((id) => lineNames(id, t))) unmatched.push(t);
  }
  const elsewhere = unmatched.length > 0 ? listedAnywhere(listing, unmatched) : new Set<Table>();
  const missingList = unmatched.filter((t) => !elsewhere.has(t));
  const same = missingNative.length === missingList.length && missingNative.every((t, i) => t === missingList[i]);
  if (!same) {
    return {
      ...base,
      ok: false,
      detail: `the two readers disagree: the table of contents lacks [${shown(missingNative)}], pg_restore --list lacks [${shown(missingList)}]`,
    };
  }
  if (missingNative.length > 0) return { ...base, ok: false, detail: `missing from the archive: ${shown(missingNative)}` };
  return { ...base, ok: true, detail: `${plan.tocTables} tables in the table of contents, ${plan.tables.length} expected; pg_restore --list agrees` };
}

/**
 * Level 2: every expected table is in the archive's table of contents by exact (schema,
 * name), read from the TOC's own fields (planCatalogue), and pg_restore --list agrees
 * (judgeCatalogue). `plan`: where it was made already.
 */
export function catalogueLevel(
  manifest: Manifest,
  expect: VerifyExpectations,
  toc: ArchiveToc | undefined,
  nativeOutcome: PromiseSettledResult<void>,
  listOutcome: PromiseSettledResult<void>,
  listing: TableListing,
  plan?: CataloguePlan,
  /** pgRestoreTooOld's words, where --list failed for that. */
  tooOld?: string,
): LevelResult {
  const base = { level: 2, name: LEVEL_NAMES[1] };
  if (!toc) {
    const reason = nativeOutcome.status === 'rejected' ? errorMessage(nativeOutcome.reason) : 'no table of contents';
    return { ...base, ok: false, detail: `table of contents unreadable: ${reason}` };
  }
  if (listOutcome.status === 'rejected') {
    const said = `pg_restore --list: ${errorMessage(listOutcome.reason)}`;
    return { ...base, ok: false, detail: tooOld ? `${tooOld} (${said})` : said };
  }
  return judgeCatalogue(plan ?? planCatalogue(manifest, expect, toc), listing);
}

export function summarize(
  entry: BackupEntry,
  manifest: Manifest,
  levels: LevelResult[],
  started: Date,
  finished: Date,
  tools: Record<string, string>,
  rowCounts?: Record<string, number>,
  records?: number,
): Verification {
  let levelPassed = 0;
  for (const l of levels) {
    if (!l.ok) break;
    levelPassed = l.level;
  }
  const firstFailure = levels.find((l) => !l.ok);
  return {
    formatVersion: 1,
    backupId: entry.id,
    component: manifest.component,
    name: entry.name,
    verifiedAt: finished.toISOString(),
    ok: firstFailure === undefined,
    levelPassed,
    levels,
    ...(rowCounts ? { rowCounts } : {}),
    ...(records !== undefined ? { records } : {}),
    durationSeconds: (finished.getTime() - started.getTime()) / 1000,
    tools,
    ...(firstFailure ? { failure: `level ${firstFailure.level} (${firstFailure.name}): ${firstFailure.detail ?? 'failed'}` } : {}),
  };
}

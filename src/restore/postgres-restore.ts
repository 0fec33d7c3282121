import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { BackupEntry } from '../backup/catalog.js';
import { decoder } from '../backup/codec.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { databaseOf, libpqEnvironment, withDatabase, withPostgres } from '../postgres/connect.js';
import { parseQualifiedName, quoteIdent, quoteQualified } from '../postgres/identifiers.js';
import { ToolFailedError } from '../process/errors.js';
import { runTool, startTool } from '../process/tool.js';
import { parsePgToolVersion, toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { HashingStream, holdLastUntil } from '../util/streams.js';
import { PgRestoreTooOldError, RestoreChecksumError, RestoreError, RestoreRefusedError } from './errors.js';
import { PreambleFilter } from './older-server.js';
import { rejection, wasInterrupted } from '../process/interrupted.js';
import { RESTORE_SCRIPT_OPTIONS } from './pg-restore-options.js';
import { pgRestoreTooOld } from '../pg-archive/versions.js';

export interface RestoreOptions {
  /** Full URL of the target database (created if missing). */
  targetUrl: string;
  /** Must equal the target database's name to restore over existing tables. */
  confirm?: string | undefined;
  clean?: boolean;
  jobs?: number;
  /** Where a parallel restore keeps its seekable copy (default: the OS temp dir). */
  workDir?: string | undefined;
}

export interface RestoreDeps {
  repo: Repository;
  log: Log;
  env?: NodeJS.ProcessEnv;
  onProgress?: ((bytes: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface TableComparison {
  table: string;
  expected: number | null;
  actual: number | null;
}

export interface RestoreResult {
  backupId: string;
  target: string;
  createdDatabase: boolean;
  seconds: number;
  bytes: number;
  jobs: number;
  compared: number;
  mismatches: TableComparison[];
  /** Where the expected counts came from; `none` if the backup was never verified at level 3. */
  countsFrom: 'verification' | 'none';
}

/**
 * Restore one PostgreSQL backup into a database. The payload's checksum is checked as
 * it streams, and the last bytes are held back until it matches, so a corrupt payload
 * never completes a single-transaction restore.
 */
export async function restorePostgres(entry: BackupEntry, options: RestoreOptions, deps: RestoreDeps): Promise<RestoreResult> {
  const manifest = entry.manifest;
  if (!manifest) throw new Error(`backup ${entry.id} has no manifest`);
  const env = deps.env ?? process.env;
  const target = databaseOf(options.targetUrl);
  const started = Date.now();
  const jobs = Math.max(1, options.jobs ?? 1);

  // Asked before the target is touched: a pg_restore older than the archive refuses it at its
  // first bytes, after the database was created, with only "unsupported version (1.16) in file
  // header" to go on. Said here with what to run instead, and nothing is created.
  const tool = await pgRestoreVersion(env);
  const tooOld = pgRestoreTooOld(tool.version, manifest.tools.pg_dump);
  if (tooOld) throw new PgRestoreTooOldError(tooOld, { pgRestore: tool.version, pgDump: manifest.tools.pg_dump });

  const createdDatabase = await prepareTarget(options.targetUrl, target, options.confirm);
  deps.log.info(`restoring postgres/${entry.name}/${entry.id} into ${maskUrl(options.targetUrl)}`, { createdDatabase, jobs });

  const { dbname, env: childEnv } = libpqEnvironment(options.targetUrl, env);
  const restoreArgs = restoreOptions(options.clean);

  const hasher = new HashingStream((bytes) => deps.onProgress?.(bytes, manifest.payload.bytes));
  // Kept, not only thrown: the gate's failure closes the decoder's input, and the decoder's own
  // exit ("unexpected end of file") can reach Promise.all first. The checksum is the cause.
  let checksumFailed: RestoreChecksumError | undefined;
  const checksum = async () => {
    const actual = hasher.digest();
    if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) {
      throw (checksumFailed = new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes));
    }
  };
  const source = await deps.repo.get(manifest.payload.key, deps.signal ? { signal: deps.signal } : {});
  const dec = decoder(manifest.payload.streamCodec);

  // pg_restore writes SET statements of its own major that an older server rejects: into
  // such a server the script goes through psql with those lines dropped (older-server.ts).
  const older = await olderServer(options.targetUrl, env, tool);
  if (older) deps.log.info(`the target runs PostgreSQL ${older.serverMajor}, pg_restore is ${older.toolMajor}: restoring through psql with the preamble's unknown settings dropped, in one transaction`, { jobs: 1 });
  if (jobs === 1 || older) {
    // One transaction: a failure leaves the target as it was.
    const sink = startOneTransactionRestore(restoreArgs, dbname, env, childEnv, older);
    const gate = holdLastUntil(checksum);
    const feeds: Promise<unknown>[] = [...sink.feeds];
    if (dec) feeds.push(pipeline(source, hasher, gate, dec.input), pipeline(dec.output, sink.input), dec.done);
    else feeds.push(pipeline(source, hasher, gate, sink.input));
    try {
      await Promise.all(feeds);
      await sink.done();
    } catch (error) {
      await settleBriefly([sink.done(), dec?.done]);
      sink.kill();
      dec?.kill();
      const [stages, d] = await Promise.all([sink.settled(), Promise.allSettled([dec?.done]).then(([x]) => x)]);
      if (checksumFailed) throw checksumFailed;
      if (wasInterrupted(deps.signal, error, rejection(d), ...stages.map((s) => rejection(s.result)))) throw new RestoreError('INTERRUPTED', `interrupted while restoring into ${target}; nothing was committed`, { cause: error });
      throw blame(error, [
        // Upstream first for a decoder that failed of itself (damaged data starves everything after it) ...
        { stage: `the payload does not decode (${manifest.payload.streamCodec})`, result: d, upstream: 'RESTORE_DECODE_FAILED' },
        // ... else the stage furthest downstream that failed of itself: its consumer, not a broken pipe, names the cause.
        ...stages,
      ]);
    }
  } else {
    // pg_restore --jobs needs a seekable file: the decoded archive is written to workDir first.
    const dir = await mkdtemp(path.join(options.workDir ?? os.tmpdir(), 'ops-restore-'));
    const file = path.join(dir, 'db.dump');
    try {
      const out = createWriteStream(file);
      if (dec) await Promise.all([pipeline(source, hasher, dec.input), pipeline(dec.output, out), dec.done]);
      else await pipeline(source, hasher, out);
      await checksum();
      const restore = startTool('pg_restore', toolPath('pg_restore', env), [...restoreArgs, `--dbname=${dbname}`, `--jobs=${jobs}`, file], { stdout: 'ignore', env: childEnv });
      await restore.done;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const seconds = (Date.now() - started) / 1000;

  const expected = entry.verification?.rowCounts;
  const mismatches: TableComparison[] = [];
  let compared = 0;
  if (expected) {
    const actual = await countRows(options.targetUrl, Object.keys(expected));
    for (const [table, count] of Object.entries(expected)) {
      compared += 1;
      const got = actual.get(table) ?? null;
      if (got !== count) mismatches.push({ table, expected: count, actual: got });
    }
  }
  return {
    backupId: entry.id,
    target,
    createdDatabase,
    seconds,
    bytes: hasher.bytes,
    jobs: older ? 1 : jobs,
    compared,
    mismatches,
    countsFrom: expected ? 'verification' : 'none',
  };
}

/**
 * One database copied from a running server into a target database, as a restore would
 * write it: `pg_dump -Fc` piped into `pg_restore --single-transaction` (through psql with
 * the preamble's unknown settings dropped when the target is older), the target created or
 * refused like a restore's (empty, or --confirm repeating its name), then every table's
 * rows counted on both sides. How a point-in-time restore reaches a database: the base
 * backup recovered to the moment on a scratch cluster, then copied from there.
 */
export async function copyDatabase(sourceUrl: string, options: Pick<RestoreOptions, 'targetUrl' | 'confirm' | 'clean'>, deps: { log: Log; env?: NodeJS.ProcessEnv; signal?: AbortSignal | undefined }): Promise<{ target: string; createdDatabase: boolean; compared: number; mismatches: TableComparison[] }> {
  const env = deps.env ?? process.env;
  const target = databaseOf(options.targetUrl);
  const createdDatabase = await prepareTarget(options.targetUrl, target, options.confirm);
  const source = libpqEnvironment(sourceUrl, env);
  const dest = libpqEnvironment(options.targetUrl, env);
  const older = await olderServer(options.targetUrl, env);
  const dump = startTool('pg_dump', toolPath('pg_dump', env), ['--format=custom', '--compress=0', '--no-password', `--dbname=${source.dbname}`], { stdout: 'pipe', env: source.env });
  const sink = startOneTransactionRestore(restoreOptions(options.clean), dest.dbname, env, dest.env, older);
  try {
    await Promise.all([pipeline(dump.child.stdout!, sink.input), ...sink.feeds]);
    await Promise.all([dump.done, sink.done()]);
  } catch (error) {
    await settleBriefly([dump.done, sink.done()]);
    dump.kill();
    sink.kill();
    const [[d], stages] = await Promise.all([Promise.allSettled([dump.done]), sink.settled()]);
    if (wasInterrupted(deps.signal, error, rejection(d), ...stages.map((s) => rejection(s.result)))) throw new RestoreError('INTERRUPTED', `interrupted while copying into ${target}; nothing was committed`, { cause: error });
    throw blame(error, [{ stage: 'pg_dump of the source', result: d, upstream: 'RESTORE_SOURCE_FAILED' }, ...stages]);
  }
  const tables = await withPostgres(sourceUrl, async (c) => (await c.query<{ t: string }>(`select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and ${SYSTEM_SCHEMA} order by 1`)).rows.map((r) => r.t));
  const [want, got] = await Promise.all([countRows(sourceUrl, tables), countRows(options.targetUrl, tables)]);
  const mismatches = tables.filter((t) => want.get(t) !== got.get(t)).map((table) => ({ table, expected: want.get(table) ?? null, actual: got.get(table) ?? null }));
  deps.log.info(`copied ${tables.length} tables into ${maskUrl(options.targetUrl)}`, { mismatches: mismatches.length });
  return { target, createdDatabase, compared: tables.length, mismatches };
}

/** pg_restore's options for a restore as opsctl writes it (no owners or grants of the source; stop at the first error). */
function restoreOptions(clean: boolean | undefined): string[] {
  return [...RESTORE_SCRIPT_OPTIONS, '--exit-on-error', ...(clean ? ['--clean', '--if-exists'] : [])];
}

/**
 * pg_restore in one transaction, reading an archive on `input`: into the database itself,
 * or, for a server older than pg_restore, its script through the preamble filter into psql
 * (older-server.ts). `feeds` are its inner pipes, to await with the caller's; `settled`
 * gives each stage's outcome, downstream first, for `blame`.
 */
function startOneTransactionRestore(args: string[], dbname: string, env: NodeJS.ProcessEnv, childEnv: NodeJS.ProcessEnv, older: OlderServer | undefined) {
  const pgRestore = toolPath('pg_restore', env);
  const restore = older
    ? startTool('pg_restore', pgRestore, [...args, '--file=-'], { stdin: 'pipe', stdout: 'pipe', env: childEnv })
    : startTool('pg_restore', pgRestore, [...args, '--single-transaction', `--dbname=${dbname}`], { stdin: 'pipe', stdout: 'ignore', env: childEnv });
  const psql = older ? startTool('psql', toolPath('psql', env), ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--single-transaction', `--dbname=${dbname}`, '--file=-'], { stdin: 'pipe', stdout: 'ignore', env: childEnv }) : undefined;
  return {
    input: restore.child.stdin!,
    feeds: psql && older ? [pipeline(restore.child.stdout!, new PreambleFilter(older.known), psql.child.stdin!)] : [],
    done: () => Promise.all([restore.done, psql?.done]),
    kill() {
      restore.kill();
      psql?.kill();
    },
    async settled(): Promise<Stage[]> {
      const [r, q] = await Promise.allSettled([restore.done, psql?.done]);
      return [
        { stage: 'psql', result: q },
        { stage: 'pg_restore', result: r },
      ];
    },
  };
}

/**
 * The first failure of a pipeline is often only the symptom (a write into a pipe whose
 * reader just exited): the other stages get a moment to end of themselves, so their own
 * exit status and words are what `blame` judges, not the SIGTERM sent after it.
 */
async function settleBriefly(done: (Promise<unknown> | undefined)[], ms = 1_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(done), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

interface Stage {
  stage: string;
  result: PromiseSettledResult<unknown> | undefined;
  /** A source stage: its own failure is the cause, reported under this code. */
  upstream?: string;
}

/**
 * The failure to report from a pipeline of tools: a stage that died because the stage it
 * fed went away (SIGPIPE, a broken pipe or reset socket), or because it was killed after
 * another stage failed, is never the cause.
 */
function blame(error: unknown, stages: Stage[]): unknown {
  const own = (r: PromiseSettledResult<unknown> | undefined): r is PromiseRejectedResult => r?.status === 'rejected' && !brokenPipe(r.reason);
  const upstream = stages.find((s) => s.upstream && own(s.result));
  if (upstream) {
    const reason = (upstream.result as PromiseRejectedResult).reason;
    return new RestoreError(upstream.upstream!, `${upstream.stage}: ${errorMessage(reason)}; nothing was committed`, { cause: reason });
  }
  const first = stages.find((s) => !s.upstream && own(s.result));
  return first ? (first.result as PromiseRejectedResult).reason : error;
}

function brokenPipe(e: unknown): boolean {
  // pg_restore answers the SIGTERM this sends after another stage failed with exit 1 and "terminated by user".
  if (e instanceof ToolFailedError) return e.signal === 'SIGPIPE' || e.signal === 'SIGTERM' || /Broken pipe|Connection reset by peer|terminated by user/.test(e.stderr);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED';
}

/** The target's major and the parameters it knows, where it is older than pg_restore. */
interface OlderServer {
  serverMajor: number;
  toolMajor: number;
  known: Set<string>;
}

/** The version of the pg_restore a restore runs. */
function pgRestoreVersion(env: NodeJS.ProcessEnv): Promise<{ version: string; major: number }> {
  return runTool('pg_restore', toolPath('pg_restore', env), ['--version'], env).then(parsePgToolVersion);
}

async function olderServer(targetUrl: string, env: NodeJS.ProcessEnv, known?: { version: string; major: number }): Promise<OlderServer | undefined> {
  const [tool, server] = await Promise.all([
    known ?? pgRestoreVersion(env),
    withPostgres(targetUrl, async (c) => {
      const { rows } = await c.query<{ major: number; names: string[] }>(`select current_setting('server_version_num')::int / 10000 as major, array_agg(name::text) as names from pg_settings`);
      return rows[0]!;
    }),
  ]);
  if (server.major >= tool.major) return undefined;
  return { serverMajor: server.major, toolMajor: tool.major, known: new Set(server.names) };
}

/**
 * Create the database if missing; refuse one that holds any user object unless confirmed
 * by name. "Empty" is no user object at all: a database with only views, functions, types,
 * sequences, schemas or extensions has somebody's work in it too.
 */
async function prepareTarget(targetUrl: string, target: string, confirm: string | undefined): Promise<boolean> {
  const adminUrl = withDatabase(targetUrl, 'postgres');
  const exists = await withPostgres(adminUrl, async (c) => (await c.query('select 1 from pg_database where datname = $1', [target])).rowCount === 1);
  if (!exists) {
    await withPostgres(adminUrl, (c) => c.query(`create database ${quoteIdent(target)}`));
    return true;
  }
  const objects = await withPostgres(targetUrl, (c) => userObjects(c));
  const what = Object.entries(objects).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  if (what.length > 0 && confirm !== target) throw new RestoreRefusedError(target, what.join(', '));
  return false;
}

const SYSTEM_SCHEMA = `n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;

/** User objects by kind, as the refusal names them. */
export async function userObjects(c: pg.Client): Promise<Record<string, number>> {
  const { rows } = await c.query<Record<string, string>>(
    `select
       (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','p','f') and ${SYSTEM_SCHEMA}) as tables,
       (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('v','m') and ${SYSTEM_SCHEMA}) as views,
       (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'S' and ${SYSTEM_SCHEMA}) as sequences,
       (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where ${SYSTEM_SCHEMA}) as functions,
       (select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace
         where ${SYSTEM_SCHEMA} and ((t.typrelid = 0 and t.typcategory <> 'A') or exists (select 1 from pg_class r where r.oid = t.typrelid and r.relkind = 'c'))) as types,
       (select count(*) from pg_namespace n where ${SYSTEM_SCHEMA} and n.nspname <> 'public') as schemas,
       (select count(*) from pg_extension where extname <> 'plpgsql') as extensions`,
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** Exact counts per table; names as pg_restore printed them (`schema.table`, quoted where needed). */
export async function countRows(url: string, tables: string[]): Promise<Map<string, number>> {
  return withPostgres(url, async (client: pg.Client) => {
    const out = new Map<string, number>();
    for (const table of tables) {
      const { schema, name } = parseQualifiedName(table);
      try {
        const { rows } = await client.query<{ n: string }>(`select count(*) as n from only ${quoteQualified(schema, name)}`);
        out.set(table, Number(rows[0]?.n ?? 0));
      } catch (error) {
        if ((error as { code?: string }).code !== '42P01') throw new Error(`counting ${table}: ${errorMessage(error)}`, { cause: error });
      }
    }
    return out;
  });
}

import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { NO_SOURCE, claimSpool, defaultSpool, dropBefore, recordPushed, spoolTmp, storeFetched, sweepConsumed, takeFetched, takePushed } from './spool.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { WalConflictError, WalCorruptError, WalError, WalNameError, WalNotArchivedError } from './errors.js';
import { parseWalName, segmentName, segmentsPerLog, walKey, walPrefix } from './names.js';
import { forEachLimit } from '../util/concurrency.js';
import { encodeMany, type Encoded } from './batch.js';
import { decodeWalObjectTo, readWalHeader } from './object.js';
import { ArchiveClaim } from './system-id.js';
import { assembleChunks } from './chunks.js';

export interface WalDeps {
  repo: Repository;
  log: Log;
  now?: () => Date;
}

export interface PushOptions {
  name: string;
  /** Files pushed at once when archive_status/ holds a backlog (this one included). */
  parallel?: number;
  /** At most this many files per call, this one included: the backlog is pushed in batches. */
  batch?: number;
  /** Where files pushed ahead of PostgreSQL's asking are recorded. */
  spool?: string;
  /** What the spool is for (spoolSource: the configuration and repository overrides). */
  source?: string;
}

export interface PushResult {
  file: string;
  /** archived: written now; identical: already there with the same content (PostgreSQL re-archives after a crash); spooled: pushed ahead by an earlier call. */
  outcome: 'archived' | 'identical' | 'spooled';
  bytes: number;
  /** Files of the backlog pushed ahead by this call. */
  ahead: string[];
}

export { defaultSpool };

/**
 * Writes one file into the archive, exclusively: the name is created only if it does not
 * exist (file://: written, fsynced, then linked into place; s3://: a conditional PUT). If
 * it exists, identical content is success and different content is refused, never
 * overwritten.
 */
export async function pushOne(deps: WalDeps, name: string, { file, object, header }: Encoded, claim: ArchiveClaim): Promise<{ outcome: 'archived' | 'identical'; bytes: number }> {
  const key = walKey(name, file);
  // Another cluster's file never lands under this name, not even once.
  if (header.systemId) await claim.check(header.systemId, file);
  const result = (outcome: 'archived' | 'identical') => ({ outcome, bytes: header.bytes });
  for (let attempt = 0; attempt < 2; attempt += 1) {
    if (await deps.repo.createExclusive(key, object)) return result('archived');
    const existing = await deps.repo.getBytes(key);
    if (!existing) continue; // removed between the two calls (retention): try once more
    let archived;
    try {
      archived = readWalHeader(file, existing);
    } catch (error) {
      if (error instanceof WalCorruptError) throw new WalConflictError(file, `damaged object (${error.message})`, header.sha256);
      throw error;
    }
    if (archived.sha256 === header.sha256 && archived.bytes === header.bytes) return result('identical');
    throw new WalConflictError(file, archived.sha256, header.sha256);
  }
  throw new WalConflictError(file, 'unknown (the name appeared and vanished twice)', header.sha256);
}

/**
 * `archive_command = 'opsctl wal push %p --name N'`: exit 0 only when the file is durable
 * in the repository. With a backlog (`.ready` files waiting in archive_status/), the next
 * ones (up to `batch` in all) are pushed alongside, `parallel` at a time, and recorded in
 * the spool, so PostgreSQL's following calls for them are answered by bin/opsctl's shell
 * fast path without starting Node: pgBackRest's asynchronous archiving without a daemon.
 */
export async function walPush(filePath: string, options: PushOptions, deps: WalDeps): Promise<PushResult> {
  const file = path.basename(filePath);
  if (!parseWalName(file)) throw new WalNameError(file);
  const spool = options.spool ?? defaultSpool(options.name);
  const source = options.source ?? NO_SOURCE;
  if (await takePushed(spool, file, filePath, source)) return { file, outcome: 'spooled', bytes: (await stat(filePath)).size, ahead: [] };
  await sweepConsumed(spool);
  // The resident pusher's note that it failed this file (bin/opsctl came here for it): this call decides now.
  // Only a trusted spool's note is ever believed (bin/opsctl), so one elsewhere is left alone.
  await rm(path.join(spool, `${file}.err`), { force: true }).catch(() => undefined);
  const parallel = Math.max(1, options.parallel ?? 4);
  const batch = Math.max(1, options.batch ?? 256);
  const status = path.join(path.dirname(filePath), 'archive_status');
  const waiting = (await readdir(status).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.ready'))
    .map((f) => f.slice(0, -'.ready'.length))
    .filter((f) => f !== file && parseWalName(f) !== undefined)
    .sort();
  const ahead: string[] = [];
  const dir = path.dirname(filePath);
  let mine = undefined as { outcome: 'archived' | 'identical'; bytes: number } | undefined;
  let failed = undefined as Error | undefined;
  const claim = new ArchiveClaim(deps.repo, options.name, deps.now ?? (() => new Date()));
  // This call's own file first; the backlog after it, encoded together (batch.ts).
  const paths = [filePath, ...waiting.slice(0, batch - 1).map((f) => path.join(dir, f))];
  // Once, before any record: claims made in parallel would empty each other's work.
  if (paths.length > 1) await claimSpool(spool, source);
  await encodeMany(
    paths,
    // Scratch files only for a backlog: a lone push creates nothing in the temp directory.
    { parallel, at: (deps.now ?? (() => new Date()))(), ...(paths.length > 1 ? { tmpRoot: await spoolTmp(spool) } : {}) },
    async (encoded) => {
      if (encoded.file === file) {
        mine = await pushOne(deps, options.name, encoded, claim);
        return;
      }
      await pushOne(deps, options.name, encoded, claim);
      await recordPushed(spool, encoded.file, path.join(dir, encoded.file), source);
      ahead.push(encoded.file);
    },
    (failedFile, error) => {
      if (failedFile === file) failed = error;
      // Pushing ahead is an optimisation: PostgreSQL will ask for this file itself, and that call reports.
      else deps.log.warn(`wal push ahead of ${failedFile} skipped: ${error.message}`);
    },
  );
  if (failed) throw failed;
  if (!mine) throw new Error(`${file} was not pushed`);
  return { file, outcome: mine.outcome, bytes: mine.bytes, ahead: ahead.sort() };
}

/** Whether the archive holds `file` (one listing, no download): what a base backup and the PITR drill wait for. */
export async function isArchived(repo: Repository, name: string, file: string): Promise<boolean> {
  const key = walKey(name, file);
  return (await repo.list(key)).some((o) => o.key === key);
}

/**
 * Calls `check` until it gives a value (not undefined) or `timeoutMs` passed (then
 * undefined). What is waited for usually comes within a second or two (an archive_command
 * starting Node): it looks every 50 ms for the first 3 s, then backs off to once per 2 s
 * (a LIST on S3 is billed: at most 60 in those 3 s). Backing off from the start, a base
 * backup waited up to 0.4 s past the arrival of each of its two files.
 */
export async function pollArchive<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (let delay = 50; ; delay = Date.now() - started < 3000 ? 50 : Math.min(2000, delay * 1.5)) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Waits (bounded) until the archive holds `file`; false if it never came. */
export async function waitArchived(repo: Repository, name: string, file: string, timeoutMs: number): Promise<boolean> {
  return (await pollArchive(async () => ((await isArchived(repo, name, file)) ? true : undefined), timeoutMs)) ?? false;
}

/**
 * `restore_command = 'opsctl wal fetch %f %p --name N'`: the file, checked (size and
 * sha256) before a byte reaches `dest`, written under a temporary name and renamed. A name
 * not in the archive fails at once with no retry (recovery asks for names that do not exist).
 */
export async function walFetch(file: string, dest: string, options: { name: string; ahead?: number; spool?: string; source?: string }, deps: WalDeps): Promise<{ file: string; bytes: number; ahead: string[] }> {
  const name = parseWalName(file);
  if (!name) throw new WalNameError(file);
  // Timeline 1 has no history file (PostgreSQL writes N.history for N >= 2); bin/opsctl answers the same without Node.
  if (file === '00000001.history') throw new WalNotArchivedError(file);
  const spool = options.spool ?? defaultSpool(options.name);
  const source = options.source ?? NO_SOURCE;
  if (name.kind === 'segment' && (await takeFetched(spool, file, dest, source))) return { file, bytes: (await stat(dest)).size, ahead: [] };
  if (name.kind === 'segment') await dropBefore(spool, file);
  const count = name.kind === 'segment' ? Math.max(0, options.ahead ?? 32) : 0;
  // Claimed once, and only when a segment is there to be kept: a fetch that finds nothing ahead creates nothing.
  let claimed: Promise<void> | undefined;
  const claim = () => (claimed ??= claimSpool(spool, source));
  const [result, ahead] = await Promise.all([fetchOne(file, dest, options.name, deps), count > 0 ? fetchAhead(name, count, spool, source, claim, options.name, deps) : Promise.resolve([])]);
  return { ...result, ahead };
}

/**
 * Recovery asks for segments one by one, in order: while it replays one, the next few are
 * fetched and checked into the spool, and bin/opsctl.js hands them over at the next calls
 * without loading the CLI (pgBackRest's archive-get queue, without a daemon).
 */
async function fetchAhead(name: ReturnType<typeof parseWalName> & object, count: number, spool: string, source: string, claim: () => Promise<void>, db: string, deps: WalDeps, concurrency = 3): Promise<string[]> {
  const got: string[] = [];
  const { log, seg } = name.segment!;
  // The next names within the same log id are certain (at 16 MiB, 256 per log id); across a
  // log id boundary they depend on the segment size, which a fetch does not know: not guessed.
  const names = Array.from({ length: count }, (_, i) => seg + 1 + i)
    .filter((n) => n < segmentsPerLog(16 << 20))
    .map((n) => segmentName(name.timeline, log * segmentsPerLog(16 << 20) + n, 16 << 20));
  // A few at a time: each holds a 16 MiB segment while it is checked and written.
  await forEachLimit(names, concurrency, async (next) => {
    try {
      const object = await deps.repo.getBytes(walKey(db, next));
      if (!object) return false; // the archive ends here (for now): the rest cannot be there either
      await claim();
      await storeFetched(spool, next, source, (tmp) => decodeWalObjectTo(next, object, tmp));
      got.push(next);
    } catch {
      // Fetching ahead is an optimisation: recovery asks for the file itself, and that call reports.
    }
    return true;
  });
  return got.sort();
}

async function fetchOne(file: string, dest: string, db: string, deps: WalDeps): Promise<{ file: string; bytes: number }> {
  const object = await deps.repo.getBytes(walKey(db, file));
  if (!object && parseWalName(file)?.kind === 'segment') {
    // Not archived whole: the segment `wal receive` was writing, as far as its chunks reach
    // (zero-filled, as pg_receivewal leaves a .partial): recovery replays to its last whole record.
    const streamed = await assembleChunks(deps.repo, db, file, dest);
    if (streamed) {
      deps.log.info(`${file}: not archived whole; its first ${streamed.bytes} bytes come from wal receive's chunks`);
      return { file, bytes: streamed.segmentBytes };
    }
  }
  if (!object) {
    // "Not archived" ends recovery and promotes the server there: said only when the archive
    // of this database is there to hold it. An empty one is a wrong repository, name or mount.
    if ((await deps.repo.list(walPrefix(db))).length === 0) {
      throw new WalError('WAL_ARCHIVE_EMPTY', `the archive ${deps.repo.url}${walPrefix(db)} holds nothing: a wrong repository, --name or an unmounted volume; recovery must not end here as if ${file} were simply not archived`);
    }
    throw new WalNotArchivedError(file);
  }
  const tmp = `${dest}.ops-fetch-${process.pid}`;
  const header = await decodeWalObjectTo(file, object, tmp, { sync: true });
  try {
    await rename(tmp, dest);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return { file, bytes: header.bytes };
}

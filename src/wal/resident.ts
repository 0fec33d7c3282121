import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, watch, writeSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../log.js';
import { ArchiveClaim } from './system-id.js';
import { encodeWalFileWhole, zstdInProcess } from './object.js';
import { EncodePool } from './encode-pool.js';
import { storePooled } from './batch.js';
import { forEachLimit } from '../util/concurrency.js';
import { errorMessage } from '../errors.js';
import { pushOne, type WalDeps } from './archive.js';
import { WalError } from './errors.js';
import { parseWalName } from './names.js';
import { claimSpool, fileStamp, recordPushed, sourceMatches, sweepConsumed, trusted } from './spool.js';

/**
 * The resident pusher: one long-lived `opsctl wal push --serve` per spool, so that
 * PostgreSQL's one-archive_command-per-segment costs a shell script and a few forks instead
 * of a Node start (about 0.1 s of CPU per 16 MiB segment on the database host). It is
 * pgBackRest's asynchronous archiving with the process kept warm:
 *
 *   bin/opsctl (archive_command, --resident)        the resident (this module)
 *   no <file>.ok in the spool, .resident alive:
 *     writes req/<file> = the file's path    ->     sees it (inotify, else 200 ms), pushes the
 *     waits for <file>.ok or <file>.err      <-     file exactly as `wal push` does, writes the
 *     .ok: checks it as for any push ahead           record (.ok) or the failure (.err)
 *     .err, a dead resident, 60 s: runs Node         and pushes ahead what archive_status/ holds
 *
 * Nothing is believed that `wal push` would not believe: the record is the same inode, size
 * and mtime stamp in the same trusted spool, written only after the object is durable in
 * the repository. Any doubt sends the call to Node, which pushes the file itself and reports.
 * The resident is started by the first Node push with --resident and leaves after `idleMs`
 * without work, when its spool is claimed for another configuration, or on SIGTERM.
 */
export const RESIDENT = '.resident';
export const REQUESTS = 'req';
export const WAKE = 'wake';

/**
 * `<pid> <start time>` of a live process from /proc/<pid>/stat (state not zombie or dead;
 * the start time, in clock ticks since boot, tells a reused pid from the one recorded).
 * bin/opsctl reads the same field the same way.
 */
async function liveIdentity(pid: number | 'self'): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).trim().split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const self = pid === 'self' ? Number(stat.slice(0, stat.indexOf(' '))) : pid;
  return `${self} ${fields[19]}`;
}

/** The pid of the resident pusher serving this spool, if one runs (a dead one, its zombie, or a pid reused since, does not count). */
export async function residentPid(spool: string): Promise<number | undefined> {
  const recorded = (await readFile(path.join(spool, RESIDENT), 'utf8').catch(() => '')).trim();
  const pid = Number(recorded.split(' ')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return (await liveIdentity(pid)) === recorded ? pid : undefined;
}

export interface ResidentOptions {
  name: string;
  spool: string;
  source: string;
  /** Leave after this long without a file to push. */
  idleMs: number;
  parallel: number;
  /** At most this many files pushed per round (a backlog goes in rounds). */
  batch: number;
}

export interface ResidentSummary {
  /** Another resident already served this spool: this one left at once. */
  alreadyRunning: boolean;
  pushed: number;
  failed: number;
}

/** Starts a resident pusher for this spool, detached, unless one runs; its output goes to `<spool>/resident.log`. */
export async function ensureResident(options: { spool: string; name: string; configPath: string; source: string; parallel: number; log: Log }): Promise<void> {
  if (await residentPid(options.spool)) return;
  // The spool exists and is this configuration's before anything is started for it; one
  // others could write is never served (the resident refuses it too).
  await claimSpool(options.spool, options.source);
  if (!(await trusted(options.spool))) {
    options.log.warn(`wal push: no resident pusher for ${options.spool}: every directory above it must be owned by this user or root and writable by nobody else`);
    return;
  }
  const script = process.argv[1];
  if (!script) return;
  const out = openSync(path.join(options.spool, 'resident.log'), 'a', 0o600);
  try {
    const child = spawn(process.execPath, [script, '--config', options.configPath, 'wal', 'push', '--serve', '--name', options.name, '--spool', options.spool, '--parallel', String(options.parallel)], {
      detached: true,
      stdio: ['ignore', out, out],
      // Not the archiver's process group: a fast shutdown of PostgreSQL signals its own children only.
      env: process.env,
    });
    child.unref();
    options.log.info(`wal push: started the resident pusher (pid ${child.pid}) for ${options.spool}`);
  } finally {
    closeSync(out);
  }
}

interface Request {
  file: string;
  filePath: string;
}

/** A file to push, with the stamp read when it was chosen (what its record will say). */
interface Work extends Request {
  stamp: string;
}

/**
 * Requests bin/opsctl left (one file each, holding the path PostgreSQL gave); a request still
 * being written waits a round. Read synchronously, as are the `.ready` files below: this
 * process serves nothing else, and each asynchronous call is a trip through the thread pool
 * (about 90 of them per segment; strace -c): a request for a file already pushed cost the
 * resident 5.7 ms of CPU, 3.9 with these and the spool's bookkeeping synchronous.
 */
function takeRequests(dir: string): Request[] {
  const found: Request[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  for (const file of names) {
    const at = path.join(dir, file);
    if (!parseWalName(file)) {
      if (!file.startsWith('.')) rmSync(at, { force: true });
      continue;
    }
    let text: string;
    try {
      text = readFileSync(at, 'utf8');
    } catch {
      continue;
    }
    if (!text.endsWith('\n')) {
      // Still being written, or left half-written by a caller killed meanwhile (gone after a minute).
      const st = statSync(at, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 60_000) rmSync(at, { force: true });
      continue;
    }
    rmSync(at, { force: true });
    const filePath = text.slice(0, -1);
    if (path.isAbsolute(filePath) && path.basename(filePath) === file) found.push({ file, filePath });
  }
  return found;
}

/** `.ready` files of the pg_wal directories requests came from: pushed before PostgreSQL asks. */
function readyFiles(dirs: Iterable<string>): Request[] {
  const found: Request[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(path.join(dir, 'archive_status'));
    } catch {
      continue;
    }
    for (const f of names) {
      if (!f.endsWith('.ready')) continue;
      const file = f.slice(0, -'.ready'.length);
      if (parseWalName(file)) found.push({ file, filePath: path.join(dir, file) });
    }
  }
  return found.sort((a, b) => a.file.localeCompare(b.file));
}

/** `opsctl wal push --serve`: serves the spool until idle, displaced or stopped. */
export async function serveResident(options: ResidentOptions, deps: WalDeps & { signal?: AbortSignal | undefined }): Promise<ResidentSummary> {
  const { spool, source } = options;
  await claimSpool(spool, source);
  if (!(await trusted(spool))) throw new WalError('WAL_SPOOL_UNTRUSTED', `the spool ${spool} is not private to this user (every directory above it must be owned by this user or root and writable by nobody else): the resident pusher does not serve it`, { exitCode: 64 });
  const requests = path.join(spool, REQUESTS);
  await mkdir(requests, { recursive: true, mode: 0o700 });
  const pidFile = path.join(spool, RESIDENT);
  const me = await liveIdentity('self');
  if (!me) throw new WalError('WAL_RESIDENT_UNSUPPORTED', 'the resident pusher needs /proc (Linux): archive_command without --resident starts Node for each file instead', { exitCode: 64 });
  for (let attempt = 0; ; attempt += 1) {
    try {
      await writeFile(pidFile, `${me}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      if (await residentPid(spool)) return { alreadyRunning: true, pushed: 0, failed: 0 };
      await rm(pidFile, { force: true });
    }
  }
  // bin/opsctl waits on this FIFO (read -t) instead of forking sleeps: a line after each record.
  const wakeFifo = path.join(spool, WAKE);
  if (!(await lstat(wakeFifo).catch(() => undefined))?.isFIFO()) {
    await rm(wakeFifo, { force: true });
    execFileSync('mkfifo', ['-m', '600', wakeFifo]);
  }
  // Read-write and non-blocking: opening never waits for a reader, a full pipe is never waited on.
  const wakeFd = openSync(wakeFifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  const wakeWaiters = () => {
    try {
      writeSync(wakeFd, '\n');
    } catch {
      // EAGAIN: 64 KiB of wake-ups nobody read; the waiters look at their record every 50 ms anyway
    }
  };
  let wake: (() => void) | undefined;
  // A request that lands while a round runs is not lost: the next round does not sleep.
  let poked = false;
  const watcher = (() => {
    try {
      return watch(requests, (_event, name) => {
        // A request removed (by this process, as it takes them) is no work: only one there is.
        if (name && !existsSync(path.join(requests, name))) return;
        poked = true;
        wake?.();
      });
    } catch {
      return undefined; // no inotify: the 200 ms round still serves
    }
  })();
  const abort = () => wake?.();
  deps.signal?.addEventListener('abort', abort);
  const now = deps.now ?? (() => new Date());
  const claim = new ArchiveClaim(deps.repo, options.name, now);
  const dirs = new Set<string>();
  // What this resident pushed, by stamp: asked again (its record consumed, the .ready not yet
  // renamed), it is recorded again rather than read, compressed and sent twice.
  const pushed = new Map<string, string>();
  const summary: ResidentSummary = { alreadyRunning: false, pushed: 0, failed: 0 };
  // Where Node has zstd (24+), threads kept for the resident's life read, hash and compress
  // each file (encode-pool.ts) and hand back only the frame, freed once stored. Done here (a
  // new zstd stream per segment through the thread pool, the hash on this thread, the output
  // left to the collector of a heap that holds the whole CLI) the resident used 74-79 ms of
  // CPU per segment; with the pool 54-62 (100 real segments, by hand).
  const pool = zstdInProcess ? new EncodePool(options.parallel) : undefined;
  // Elsewhere one read buffer per concurrent push, kept for the resident's life.
  const buffers: Buffer[] = [];
  let lastWork = Date.now();
  deps.log.info(`wal push --serve: serving ${spool} for ${options.name} (${me}); leaving after ${options.idleMs / 1000} s without work`);
  try {
    let checked = 0;
    while (!deps.signal?.aborted && Date.now() - lastWork < options.idleMs) {
      // Displaced: the spool was claimed for another configuration, or another resident took
      // over. Looked at once a second, not every round: a claim for another configuration
      // empties the spool first (claimSpool), so meanwhile this one finds no request, and a
      // record it writes for a file it had taken is checked against the source (recordPushed).
      if (Date.now() - checked >= 1000) {
        if ((await readFile(pidFile, 'utf8').catch(() => '')).trim() !== me || !(await sourceMatches(spool, source))) {
          deps.log.info('wal push --serve: the spool is no longer this resident\'s (configuration changed); leaving');
          break;
        }
        checked = Date.now();
      }
      poked = false;
      const requested = takeRequests(requests);
      const asked = new Set(requested.map((r) => r.file));
      for (const r of requested) dirs.add(path.dirname(r.filePath));
      const todo = new Map<string, Request>();
      for (const r of [...requested, ...readyFiles(dirs)]) if (!todo.has(r.file)) todo.set(r.file, r);
      const work: Work[] = [];
      for (const r of todo.values()) {
        const stamp = await fileStamp(r.filePath);
        if (!stamp) continue;
        if (pushed.get(r.file) === stamp) {
          // Recorded again only when asked: a .ready alone is PostgreSQL's next call, answered already.
          if (asked.has(r.file)) {
            await recordPushed(spool, r.file, r.filePath, source);
            wakeWaiters();
          }
          continue;
        }
        work.push({ ...r, stamp });
        if (work.length >= options.batch) break;
      }
      if (work.length === 0) {
        if (poked) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 200);
          wake = () => (clearTimeout(t), resolve());
        });
        wake = undefined;
        continue;
      }
      lastWork = Date.now();
      await sweepConsumed(spool);
      const at = now();
      await forEachLimit(work, options.parallel, async (w) => {
        const scratch = pool ? undefined : buffers.pop();
        try {
          if (pool) {
            await storePooled(pool, w.filePath, at, (encoded) => pushOne(deps, options.name, encoded, claim));
          } else {
            const encoded = await encodeWalFileWhole(w.file, w.filePath, at, scratch);
            buffers.push(encoded.scratch);
            await pushOne(deps, options.name, { file: w.file, object: encoded.object, header: encoded.header }, claim);
          }
          await recordPushed(spool, w.file, w.filePath, source);
          await rm(path.join(spool, `${w.file}.err`), { force: true });
          if (asked.has(w.file)) wakeWaiters();
          pushed.set(w.file, w.stamp);
          summary.pushed += 1;
        } catch (error) {
          if (scratch && !buffers.includes(scratch)) buffers.push(scratch);
          summary.failed += 1;
          deps.log.warn(`wal push --serve: ${w.file} not pushed: ${errorMessage(error)} (PostgreSQL's own call pushes it and reports)`);
          // bin/opsctl, waiting for this file, hands the call to Node at once.
          await writeFile(path.join(spool, `${w.file}.err`), `${errorMessage(error)}\n`, { mode: 0o600 }).catch(() => undefined);
          wakeWaiters();
        }
      });
      // Files PostgreSQL archived are gone from pg_wal in time: their stamps go too.
      if (pushed.size > 4096) for (const f of [...pushed.keys()].slice(0, pushed.size - 1024)) pushed.delete(f);
    }
  } finally {
    await pool?.close();
    closeSync(wakeFd);
    watcher?.close();
    deps.signal?.removeEventListener('abort', abort);
    if ((await readFile(pidFile, 'utf8').catch(() => '')).trim() === me) await rm(pidFile, { force: true });
  }
  deps.log.info(`wal push --serve: left after ${summary.pushed} pushed, ${summary.failed} failed`);
  return summary;
}

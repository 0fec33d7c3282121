import { execFileSync, spawn } from 'node:child_process';
import { appendFile, chmod, chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupEntry } from '../backup/catalog.js';
import type { BaseDetails } from '../backup/postgres-base.js';
import { decoder } from '../backup/codec.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { runTool, startTool } from '../process/tool.js';
import { dataDirMajor, majorOfVersion, pgServerTool } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream, holdLastUntil } from '../util/streams.js';
import { parseWalName, segmentIndex, segmentIndexOfLsn, walKey } from '../wal/names.js';
import { startPrefetch } from '../wal/prefetch.js';
import { streamedRecords } from '../wal/chunks.js';
import { RestoreChecksumError, RestoreError, RestoreRefusedError } from './errors.js';
import { parseTarget } from './pitr-plan.js';
import { flushWhileWritten } from '../util/fsync.js';

export interface PitrTarget {
  /** ISO time or anything PostgreSQL's recovery_target_time takes. */
  time?: string | undefined;
  name?: string | undefined;
  lsn?: string | undefined;
}

/** What the promoted server says of its own recovery. */
export interface RecoveryStop {
  /** The log's "recovery stopping …" line, else "redo done at …". */
  line: string;
  /** The last WAL record replayed ("redo done at"). */
  redoDoneLsn: string | null;
  /** pg_last_xact_replay_timestamp(): the commit time of the last transaction replayed. */
  lastReplayed: string | null;
  /** The timeline the server was promoted onto ("selected new timeline ID"). */
  promotedTimeline: number | null;
}

export interface PitrOptions {
  pgdata: string;
  target: PitrTarget;
  /** The command PostgreSQL runs for each WAL file it needs (`… wal fetch "%f" "%p" --name N`). */
  restoreCommand: string;
  /** Start the restored cluster on this port and wait for recovery to reach the target and the server to be promoted. */
  start?: { port: number; timeoutMs?: number } | undefined;
  /** Keep archive_mode of the original (a restored cluster archives into the same name on its new timeline). */
  keepArchiving?: boolean;
  /** Follow this timeline rather than the newest the archive holds (a drill recovers the live server's own history). */
  timeline?: number;
  /** With `start`: fetch segments into restore_command's spool meanwhile (wal/prefetch.ts); the spool is removed at the end. */
  prefetch?: { spool: string; name: string; source?: string };
  /** A restore "to the end" must replay into this segment (the newest archived on the path), or it stopped early. */
  endSegment?: string | undefined;
  /** The segment after it, streamed in chunks: a restore "to the end" must replay into it too when its chunks hold a whole record. */
  streamed?: { name: string; segment: string } | undefined;
  /** Stored bytes of the base backup read, of its stored size. */
  onProgress?: ((bytes: number, total: number) => void) | undefined;
}

export interface PitrResult {
  backupId: string;
  pgdata: string;
  startLsn: string;
  stopLsn: string;
  target: PitrTarget;
  started: boolean;
  /** What recovery said where it stopped (from the server log), when started. */
  recovery?: string;
  /** Where the started server actually stopped, checked against the target before success is reported. */
  stopped?: RecoveryStop;
  /** Segments this process fetched into restore_command's spool while recovery ran. */
  prefetched: number;
  seconds: number;
}

// postgresql.conf's quoting, as ALTER SYSTEM writes it: the quote and the backslash (an escape there) doubled.
const sqlString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** The lines appended to postgresql.auto.conf: a later line wins, so the restored cluster's settings override the original's. */
export function recoverySettings(options: Pick<PitrOptions, 'target' | 'restoreCommand' | 'keepArchiving' | 'timeline'>): string[] {
  const lines = [
    '# written by opsctl restore postgres --base (point-in-time recovery)',
    `restore_command = ${sqlString(options.restoreCommand)}`,
    `recovery_target_timeline = ${options.timeline ? `'${options.timeline}'` : `'latest'`}`,
    // A base backup taken from a standby carries its primary_conninfo: the restored cluster
    // recovers from the archive alone and must never connect to the live primary.
    `primary_conninfo = ''`,
  ];
  const t = options.target;
  parseTarget(t); // one target at most, each well-formed (64 otherwise): the same rule the restore command applied
  if (t.time) lines.push(`recovery_target_time = ${sqlString(t.time)}`);
  if (t.name) lines.push(`recovery_target_name = ${sqlString(t.name)}`);
  if (t.lsn) {
    lines.push(`recovery_target_lsn = ${sqlString(t.lsn)}`);
  }
  // Without a target, recovery replays every archived segment and then promotes.
  if (t.time || t.name || t.lsn) lines.push(`recovery_target_action = 'promote'`, `recovery_target_inclusive = on`);
  if (!options.keepArchiving) lines.push(`archive_mode = 'off'`);
  return lines;
}

/**
 * Point-in-time recovery: the base backup extracted into an empty `pgdata` (checksum of
 * the payload proven before the last byte reaches tar, then every file checked against
 * PostgreSQL's own backup_manifest by pg_verifybackup), recovery settings written, and
 * with `start` the cluster started and watched until recovery reached the target and
 * the server was promoted, or failed saying why (target not reached, segment missing).
 */
export async function restorePostgresBase(entry: BackupEntry, options: PitrOptions, deps: { repo: Repository; log: Log; env?: NodeJS.ProcessEnv; signal?: AbortSignal | undefined }): Promise<PitrResult> {
  const started = Date.now();
  const manifest = entry.manifest!;
  const details = manifest.details as unknown as BaseDetails;
  if (details?.kind !== 'base') throw new RestoreError('NOT_A_BASE_BACKUP', `${entry.id} is not a base backup (opsctl backup postgres --base takes them)`, { exitCode: 64 });
  // The server binaries of the backup's own major, found before anything is extracted: a
  // data directory of one major never starts under another's pg_ctl.
  const env = deps.env ?? process.env;
  const major = majorOfVersion(details.serverVersion);
  pgServerTool('pg_verifybackup', major, env);
  if (options.start) pgServerTool('pg_ctl', major, env);
  const pgdata = path.resolve(options.pgdata);
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const present = await readdir(pgdata);
  if (present.length > 0) throw new RestoreRefusedError(pgdata, `${present.length} entries; a base backup restores into an empty directory only`);
  // PostgreSQL refuses a data directory others can read (0700, or 0750 with group access).
  await chmod(pgdata, 0o700);
  const lines = recoverySettings(options);

  // Fetching starts now, beside the extraction: the first segments are waiting when recovery begins.
  const segmentBytes = details.segmentBytes;
  const prefetch =
    options.start && options.prefetch
      ? startPrefetch({
          repo: deps.repo,
          name: options.prefetch.name,
          timeline: details.timeline,
          first: segmentIndexOfLsn(details.startLsn, segmentBytes),
          segmentBytes,
          spool: options.prefetch.spool,
          ...(options.prefetch.source ? { source: options.prefetch.source } : {}),
          // restore_command runs as the server's user: the spool and its segments are that user's.
          owner: await stat(path.dirname(pgdata)),
        })
      : undefined;
  try {
    const result = await restoreInto(entry, options, deps, pgdata, lines, started);
    return { ...result, prefetched: prefetch?.fetched() ?? 0 };
  } finally {
    await prefetch?.stop();
    if (prefetch) await rm(options.prefetch!.spool, { recursive: true, force: true });
  }
}

async function restoreInto(entry: BackupEntry, options: PitrOptions, deps: { repo: Repository; log: Log; env?: NodeJS.ProcessEnv; signal?: AbortSignal | undefined }, pgdata: string, lines: string[], started: number): Promise<PitrResult> {
  const manifest = entry.manifest!;
  const details = manifest.details as unknown as BaseDetails;
  const env = deps.env ?? process.env;
  const hasher = new HashingStream(options.onProgress && ((b) => options.onProgress!(b, manifest.payload.bytes)));
  const gate = holdLastUntil(async () => {
    const actual = hasher.digest();
    if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
  });
  const dec = decoder(manifest.payload.streamCodec)!;
  // The zstd binary's output goes to tar at the OS level: the gate holds the last compressed
  // bytes back, so the proof still comes before the end of the tar. Through this process, the
  // gigabyte of tar cost the restore's peak memory (161 against 144 MiB) and, on Node 24,
  // 0.2-0.3 s of garbage collection per second of extraction.
  const direct = dec.processOutput === true;
  const tar = startTool('tar', 'tar', ['-x', '-f', '-', '-C', pgdata, '--no-same-owner'], { stdin: direct ? dec.output : 'pipe' });
  // PostgreSQL fsyncs every file of a data directory whose pg_control says it was running (a
  // base backup's does) before recovery begins: the gigabyte tar writes here, about 0.5 s of
  // write-back (pgbench -s 70), which it waited for between its first log line and its first
  // segment. Flushed as tar writes, the disk works while the rest is decompressed; the last
  // pass runs beside pg_verifybackup's read, and PostgreSQL's own finds the files clean.
  const flusher = flushWhileWritten(pgdata);
  try {
    const signal = deps.signal ? { signal: deps.signal } : {};
    await Promise.all([pipeline(await deps.repo.get(manifest.payload.key, signal), hasher, gate, dec.input, signal), direct ? undefined : pipeline(dec.output, tar.child.stdin!, signal), dec.done, tar.done]);
  } catch (error) {
    tar.kill();
    dec.kill();
    await flusher.stop();
    throw new RestoreError('BASE_RESTORE_FAILED', `the base backup did not extract into ${pgdata}: ${errorMessage(error)}`, { cause: error });
  }
  // PostgreSQL's own check of every file against the backup_manifest it wrote (WAL comes from
  // the archive: -n), beside the last flush.
  const [verified, flushed] = await Promise.allSettled([
    runTool('pg_verifybackup', pgServerTool('pg_verifybackup', majorOfVersion(details.serverVersion), env), ['--no-parse-wal', '--quiet', pgdata], env),
    flusher.finish(),
  ]);
  if (verified.status === 'rejected') {
    throw new RestoreError('BASE_VERIFY_FAILED', `pg_verifybackup found the extracted base backup damaged: ${errorMessage(verified.reason)}`, { cause: verified.reason });
  }
  if (flushed.status === 'rejected') {
    throw new RestoreError('BASE_RESTORE_FAILED', `the extracted base backup could not be flushed to disk in ${pgdata}: ${errorMessage(flushed.reason)}`, { cause: flushed.reason });
  }
  await appendFile(path.join(pgdata, 'postgresql.auto.conf'), `\n${lines.join('\n')}\n`);
  // A standby's base backup holds its standby.signal: kept, the restored cluster would wait
  // for more WAL as a standby forever instead of being promoted at the target.
  await rm(path.join(pgdata, 'standby.signal'), { force: true });
  await writeFile(path.join(pgdata, 'recovery.signal'), '');
  // The files take the owner of the directory they were restored into (root extracting for the postgres user).
  const owner = await stat(path.dirname(pgdata));
  const me = process.getuid?.();
  if (me === 0 && owner.uid !== 0) await chownTree(pgdata, owner.uid, owner.gid);

  const result: PitrResult = { backupId: entry.id, pgdata, startLsn: details.startLsn, stopLsn: details.stopLsn, target: options.target, started: false, prefetched: 0, seconds: 0 };
  if (options.start) {
    const stopped = await startAndWait(pgdata, options.start.port, options.start.timeoutMs ?? 300_000, { uid: owner.uid, gid: owner.gid }, env, options.target, deps.signal);
    result.recovery = stopped.line;
    result.stopped = stopped;
    result.started = true;
    const wrong = wrongStop(options, stopped, details.segmentBytes) ?? (await stoppedBeforeStreamed(deps.repo, options, stopped, details.segmentBytes));
    if (wrong) {
      // Promoted at another moment than asked: not left running to be taken for the restore.
      await stopCluster(pgdata, { uid: owner.uid, gid: owner.gid }, env);
      throw new RestoreError('PITR_WRONG_STOP', `${wrong}; the restored cluster was stopped and left in ${pgdata} for inspection (log: ${path.join(pgdata, 'ops-restore.log')})`, { context: { stopped } });
    }
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * Whether recovery stopped where it was asked to, from what the server itself says; a
 * sentence naming both points when it did not.
 */
export function wrongStop(options: Pick<PitrOptions, 'target' | 'endSegment'>, stopped: RecoveryStop & { afterTarget?: boolean | null }, segmentBytes: number): string | undefined {
  const t = options.target;
  if (t.name !== undefined) {
    return stopped.line.includes(`restore point "${t.name}"`) ? undefined : `recovery was asked to stop at restore point "${t.name}" but stopped elsewhere (${stopped.line})`;
  }
  if (t.time !== undefined) {
    if (!/^recovery stopping/.test(stopped.line)) return `recovery was asked to stop at ${t.time} but ${stopped.line}`;
    if (stopped.afterTarget) return `recovery was asked to stop at ${t.time} but replayed a transaction committed at ${stopped.lastReplayed}, after it`;
    return undefined;
  }
  if (t.lsn !== undefined) return /^recovery stopping/.test(stopped.line) ? undefined : `recovery was asked to stop at LSN ${t.lsn} but ${stopped.line}`;
  if (options.endSegment) {
    const end = parseWalName(options.endSegment)!;
    const need = segmentIndex(end.segment!, segmentBytes);
    const done = stopped.redoDoneLsn ? segmentIndexOfLsn(stopped.redoDoneLsn, segmentBytes) : -1;
    if (done < need) return `recovery ended at ${stopped.redoDoneLsn ?? 'an unknown point'}, before the newest archived segment ${options.endSegment}: the archive did not deliver everything (a segment that could not be read ends recovery early)`;
  }
  return undefined;
}

/**
 * A restore "to the end" with streamed chunks past the newest archived segment: wal fetch
 * serves them, so recovery must replay into that segment whenever its chunks hold a whole
 * record. A stop before it means the chunks were not delivered (removed, or unreadable as
 * "not archived"), and the restore would otherwise report the end with seconds of committed
 * work missing.
 */
async function stoppedBeforeStreamed(repo: Repository, options: Pick<PitrOptions, 'target' | 'streamed'>, stopped: RecoveryStop, segmentBytes: number): Promise<string | undefined> {
  const t = options.target;
  if (!options.streamed || t.name !== undefined || t.time !== undefined || t.lsn !== undefined) return undefined;
  const need = segmentIndex(parseWalName(options.streamed.segment)!.segment!, segmentBytes);
  const done = stopped.redoDoneLsn ? segmentIndexOfLsn(stopped.redoDoneLsn, segmentBytes) : -1;
  if (done >= need) return undefined;
  const at = `recovery ended at ${stopped.redoDoneLsn ?? 'an unknown point'}, before the streamed segment ${options.streamed.segment}`;
  let held: Awaited<ReturnType<typeof streamedRecords>>;
  try {
    held = await streamedRecords(repo, options.streamed.name, options.streamed.segment);
  } catch (error) {
    return `${at}, whose chunks cannot be read now: ${errorMessage(error)}`;
  }
  // Archived whole since the plan (the receiver finished it): then recovery read it whole.
  if (!held) return (await repo.list(walKey(options.streamed.name, options.streamed.segment))).length > 0 ? `${at}, which is archived` : `${at}: its chunks, there when the restore began, are gone and were not replayed`;
  if (held.recordEnd === undefined) return undefined; // its chunks only continue a record from before, or cut the first one off
  return `${at}, whose chunks hold whole records (the first ends at byte ${held.recordEnd} of ${held.bytes}): they were not replayed`;
}

/**
 * Stops a restored or scratch cluster, if it runs, under its own major's pg_ctl. Never
 * throws: it runs in cleanup paths, where the first failure is the one to report.
 */
export async function stopCluster(pgdata: string, owner: { uid: number; gid: number }, env: NodeJS.ProcessEnv, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  try {
    const cmd = asOwner(owner, [pgServerTool('pg_ctl', dataDirMajor(pgdata), env), '-D', pgdata, '-m', mode, '-w', 'stop']);
    await runTool('pg_ctl', cmd[0]!, cmd.slice(1), env);
  } catch {
    // not running, or no pg_ctl of its major: nothing to stop
  }
}

/** As root, a scratch or restored cluster runs as the postgres user (PostgreSQL refuses root). */
export function scratchOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  } catch {
    return undefined;
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

/** The command line run as `owner` when we are root (PostgreSQL's server refuses to run as root). */
export function asOwner(owner: { uid: number; gid: number }, args: string[]): string[] {
  if (process.getuid?.() !== 0 || owner.uid === 0) return args;
  return ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups', ...args];
}

/**
 * What a restored or scratch cluster needs to start anywhere, whatever the live server's
 * setup carried into the base backup: a postgresql.conf (Debian keeps the live one in
 * /etc/postgresql, outside the data directory: an empty one is written), and an hba file
 * of its own (the live pg_hba.conf may be missing, or ask for passwords the restore does not
 * have): local connections over the socket in the data directory, and loopback, trusted.
 * The server listens on 127.0.0.1 only.
 */
async function prepareStart(pgdata: string, owner: { uid: number; gid: number }): Promise<string> {
  const conf = path.join(pgdata, 'postgresql.conf');
  if (!(await stat(conf).catch(() => undefined))) await writeFile(conf, '# written by opsctl: the base backup carried no postgresql.conf (settings: postgresql.auto.conf)\n', { mode: 0o600 });
  const hba = path.join(pgdata, 'ops-restore-hba.conf');
  await writeFile(hba, ['# written by opsctl for the restore: the socket in this data directory and loopback', 'local all all trust', 'host all all 127.0.0.1/32 trust', ''].join('\n'), { mode: 0o600 });
  const ident = path.join(pgdata, 'ops-restore-ident.conf');
  await writeFile(ident, '', { mode: 0o600 });
  if (process.getuid?.() === 0 && owner.uid !== 0) for (const f of [conf, hba, ident]) await chown(f, owner.uid, owner.gid);
  return hba;
}

/**
 * The server options of a restored or scratch cluster's first start, over the live
 * configuration it carries: this data directory (a data_directory setting pointing at the
 * live one must never win), its own hba, no SSL files it lacks, no preloaded libraries
 * (they may not be installed here), modest shared memory (the live shared_buffers can
 * exceed a 4 GiB task), and the log where the restore reads it. Command-line options
 * hold for this start only; the configuration files keep the live values.
 */
export function startOptions(pgdata: string, port: number, hba: string): string {
  const c = (k: string, v: string) => `-c ${k}=${v}`;
  return [
    `-p ${port}`,
    c('listen_addresses', '127.0.0.1'),
    `-k ${pgdata}`,
    c('data_directory', pgdata),
    c('hba_file', hba),
    c('ident_file', path.join(pgdata, 'ops-restore-ident.conf')),
    c('ssl', 'off'),
    c('shared_preload_libraries', "''"),
    c('shared_buffers', '128MB'),
    c('huge_pages', 'off'),
    c('logging_collector', 'off'),
    c('log_destination', 'stderr'),
  ].join(' ');
}

/**
 * Starts the restored cluster and waits until it is out of recovery (promoted at the
 * target) — reading its log, so a recovery that cannot go on ends the wait at once with
 * PostgreSQL's own words (a segment the archive lacks, a target never reached).
 */
async function startAndWait(pgdata: string, port: number, timeoutMs: number, owner: { uid: number; gid: number }, env: NodeJS.ProcessEnv, target: PitrTarget, signal?: AbortSignal): Promise<RecoveryStop & { afterTarget: boolean | null }> {
  const log = path.join(pgdata, 'ops-restore.log');
  const pgCtl = pgServerTool('pg_ctl', dataDirMajor(pgdata), env);
  const hba = await prepareStart(pgdata, owner);
  const cmd = asOwner(owner, [pgCtl, '-D', pgdata, '-l', log, '-o', startOptions(pgdata, port, hba), 'start']);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) return resolve();
      readFile(log, 'utf8')
        .catch(() => '')
        .then((text) => {
          const said = text.split('\n').filter((l) => /(FATAL|PANIC|ERROR):/.test(l)).slice(0, 3);
          // pg_ctl may fail before the server writes a log (no such binary, a data directory it refuses): its own words then.
          const lines = said.length ? said : text.trim() ? text.trim().split('\n').slice(-3) : err.trim().split('\n').slice(-3);
          reject(new RestoreError('PITR_START_FAILED', `the restored cluster did not start: ${lines.map((l) => l.replace(/^.*?(FATAL|PANIC|ERROR|LOG):\s+/, '$1: ')).join(' / ') || `pg_ctl exited with ${code} and said nothing`} (log: ${log})`));
        });
    });
  });
  const deadline = Date.now() + timeoutMs;
  const pg = await import('pg');
  while (Date.now() < deadline) {
    if (signal?.aborted) {
      // Interrupted: the server this started does not outlive the command.
      await stopCluster(pgdata, owner, env);
      throw new RestoreError('INTERRUPTED', `interrupted while recovery ran; the restored cluster was stopped (log: ${log})`);
    }
    const text = await readFile(log, 'utf8').catch(() => '');
    const fatal = /(FATAL|PANIC):\s+(.*)/.exec(text);
    if (fatal) {
      const missing = /could not (?:open|find) .*?file "?(?:pg_wal\/)?([0-9A-F]{24})/.exec(text)?.[1] ?? /requested WAL segment ([0-9A-F]{24})/.exec(text)?.[1];
      throw new RestoreError('PITR_RECOVERY_FAILED', `recovery failed: ${fatal[2]!.trim()}${missing ? ` (segment ${missing} is not in the archive)` : ''}; log: ${log}`);
    }
    try {
      const c = new pg.default.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        const { rows } = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
        if (rows[0] && !rows[0].r) {
          // The log is read again: the lines of the promotion may have come after the read above.
          const done = await readFile(log, 'utf8').catch(() => text);
          const line = (/LOG:\s+(recovery stopping .*)/.exec(done)?.[1] ?? /LOG:\s+(redo done at .*)/.exec(done)?.[1] ?? 'recovery complete').trim();
          const { rows: at } = await c.query<{ last: string | null; after: boolean | null }>(
            `select pg_last_xact_replay_timestamp()::text as last, ${target.time !== undefined ? 'pg_last_xact_replay_timestamp() > $1::timestamptz' : 'null::boolean'} as after`,
            target.time !== undefined ? [target.time] : [],
          );
          return {
            line,
            redoDoneLsn: /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(done)?.[1] ?? null,
            lastReplayed: at[0]?.last ?? null,
            afterTarget: at[0]?.after ?? null,
            promotedTimeline: Number(/selected new timeline ID: (\d+)/.exec(done)?.[1] ?? Number.NaN) || null,
          };
        }
      } finally {
        await c.end().catch(() => undefined);
      }
    } catch (error) {
      // Starting up or still replaying (refused, 57P03) is waited for; being refused entry is not.
      const code = (error as { code?: string }).code;
      if (code === '28P01' || code === '28000' || code === '3D000') {
        await stopCluster(pgdata, owner, env);
        throw new RestoreError('PITR_CONNECT_REFUSED', `the restored cluster runs but refused the restore's connection (user postgres over 127.0.0.1:${port}): ${errorMessage(error)} [SQLSTATE ${code}]; it was stopped (log: ${log})`, { cause: error });
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new RestoreError('PITR_TIMEOUT', `the restored cluster was still in recovery after ${timeoutMs / 1000} s; log: ${log}`);
}

import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../log.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { METRIC } from '../metrics/samples.js';
import { connectPostgres, libpqEnvironment } from '../postgres/connect.js';
import { startTool, type RunningTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { errorMessage } from '../errors.js';
import { maskUrl } from '../util/mask.js';
import { pushOne } from './archive.js';
import { chunkPrefix, contiguousEnd, parseChunks, putChunk } from './chunks.js';
import { WalClusterMismatchError, WalConflictError, WalReceiveError } from './errors.js';
import { parseWalName } from './names.js';
import { encodeWalFile } from './object.js';
import { ArchiveClaim } from './system-id.js';

export interface ReceiveOptions {
  name: string;
  url: string;
  /** The physical replication slot: what keeps the primary from removing WAL this receiver has not read. */
  slot: string;
  /** pg_receivewal's directory: the segment being written, and finished ones until they are archived. */
  dir: string;
  /** How often the growth of the open segment is uploaded (default 1 s). */
  intervalMs: number;
  createSlot: boolean;
  /** pg_receivewal --synchronous: flush and report each write (for synchronous_standby_names). */
  synchronous: boolean;
  /** How often slot lag and the receiver's state are reported as metrics (default 15 s). */
  reportEveryMs?: number;
}

export interface ReceiveDeps {
  repo: Repository;
  log: Log;
  env: NodeJS.ProcessEnv;
  metrics: MetricsRecorder;
  now: () => Date;
  signal?: AbortSignal | undefined;
}

export interface ReceiveSummary {
  slot: string;
  slotCreated: boolean;
  /** Finished segments (and history files) archived by the receiver. */
  archived: number;
  chunks: number;
  chunkBytes: number;
  /** Times pg_receivewal was started again after it stopped (server restart, network). */
  restarts: number;
  /** How far the repository holds the stream: segment and byte offset of the last chunk. */
  uploadedTo: { segment: string; offset: number } | null;
}

interface ServerFacts {
  systemId: string;
  segmentBytes: number;
  blockBytes: number;
  slotCreated: boolean;
}

/** Slot names PostgreSQL accepts: lower-case letters, digits and underscores, 63 at most. */
export const defaultSlotName = (name: string) => `ops_receive_${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);

/**
 * Checks the server and the slot before anything streams. A slot is never created unless
 * asked (--create-slot): it makes the primary keep every WAL file until this receiver has
 * read it, so a dead receiver fills the primary's disk unless max_slot_wal_keep_size is set.
 */
async function prepare(options: ReceiveOptions, deps: ReceiveDeps): Promise<ServerFacts> {
  let c;
  try {
    c = await connectPostgres(options.url, 'ops-automation-receive');
  } catch (error) {
    throw new WalReceiveError('WAL_RECEIVE_SERVER', `cannot connect to ${maskUrl(options.url)}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    const systemId = (await c.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')).rows[0]!.id;
    const settings = new Map((await c.query<{ name: string; setting: string }>(`select name, setting from pg_settings where name in ('wal_segment_size', 'wal_block_size', 'max_slot_wal_keep_size', 'wal_level', 'server_version_num')`)).rows.map((r) => [r.name, r.setting]));
    if (settings.get('wal_level') === 'minimal') throw new WalReceiveError('WAL_RECEIVE_SERVER', 'wal_level is minimal: set wal_level = replica and restart the server');
    if (Number(settings.get('server_version_num')) < 150000) throw new WalReceiveError('WAL_RECEIVE_SERVER', 'the server is older than PostgreSQL 15: pg_receivewal cannot start from the slot\'s position there (READ_REPLICATION_SLOT), so a restart could skip WAL; use wal push alone');
    const [slot] = (await c.query<{ slot_type: string; active: boolean; active_pid: number | null; wal_status: string | null }>('select slot_type, active, active_pid, wal_status from pg_replication_slots where slot_name = $1', [options.slot])).rows;
    let slotCreated = false;
    if (!slot) {
      if (!options.createSlot) {
        throw new WalReceiveError('WAL_RECEIVE_SLOT', `the replication slot ${options.slot} does not exist on ${maskUrl(options.url)}: run once with --create-slot (the primary then keeps WAL until this receiver reads it: set max_slot_wal_keep_size so a dead receiver cannot fill its disk)`, { exitCode: 64 });
      }
      // Reserved now: WAL from this moment on is kept for the receiver, before it first connects.
      await c.query('select pg_create_physical_replication_slot($1, true)', [options.slot]);
      slotCreated = true;
      deps.log.warn(`created the physical replication slot ${options.slot} on ${maskUrl(options.url)}: the server now keeps WAL until this receiver has read it. Drop it with select pg_drop_replication_slot('${options.slot}') when the receiver is retired`);
    } else if (slot.slot_type !== 'physical') {
      throw new WalReceiveError('WAL_RECEIVE_SLOT', `the slot ${options.slot} is a ${slot.slot_type} slot: wal receive needs a physical one (give pitr.receive.slot another name)`, { exitCode: 64 });
    } else if (slot.active) {
      throw new WalReceiveError('WAL_RECEIVE_SLOT', `the slot ${options.slot} is in use by another receiver (server pid ${slot.active_pid}): one receiver per slot; stop the other one first`);
    } else if (slot.wal_status === 'lost') {
      throw new WalReceiveError('WAL_RECEIVE_SLOT', `the slot ${options.slot} has lost WAL the receiver never read (max_slot_wal_keep_size was exceeded): drop and recreate it, and take a base backup (the archive may have a gap: opsctl wal status)`);
    }
    if (settings.get('max_slot_wal_keep_size') === '-1') deps.log.warn(`max_slot_wal_keep_size is unlimited on ${maskUrl(options.url)}: if this receiver dies, the slot keeps WAL until the disk is full. Set it (e.g. 10GB) so the slot is invalidated instead`);
    return { systemId, segmentBytes: Number(settings.get('wal_segment_size') ?? 16 << 20), blockBytes: Number(settings.get('wal_block_size') ?? 8192), slotCreated };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * The bytes of the open segment from `from` up to where pg_receivewal has written: it
 * pre-fills the file with zeros, and every WAL page it writes starts with a non-zero magic
 * number, so the written part ends before the first page whose header is zero, at the last
 * non-zero byte (trailing zeros of a record are restored by the zero fill anyway).
 */
async function writtenFrom(fh: FileHandle, from: number, blockBytes: number, segmentBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = from;
  while (at < segmentBytes) {
    const want = Math.min(1 << 20, segmentBytes - at);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, at);
    if (bytesRead === 0) break;
    const got = buf.subarray(0, bytesRead);
    let stop = got.length;
    for (let page = Math.ceil(at / blockBytes) * blockBytes; page + 2 <= at + got.length; page += blockBytes) {
      if (got.readUInt16LE(page - at) === 0) {
        stop = page - at;
        break;
      }
    }
    parts.push(got.subarray(0, stop));
    if (stop < got.length || bytesRead < want) break;
    at += bytesRead;
  }
  const all = Buffer.concat(parts);
  let end = all.length;
  while (end > 0 && all[end - 1] === 0) end -= 1;
  return all.subarray(0, end);
}

/** Where two reads of the same range first differ (their common length if nowhere). */
function agreedLength(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  const step = 64 * 1024;
  for (let i = 0; i < n; i += step) {
    const j = Math.min(n, i + step);
    if (a.subarray(i, j).equals(b.subarray(i, j))) continue;
    for (let k = i; k < j; k += 1) if (a[k] !== b[k]) return k;
  }
  return n;
}

/**
 * `opsctl wal receive`: pg_receivewal on a physical slot, and every `intervalMs` the
 * repository brought up to what it has received: finished segments archived exactly as
 * `wal push` archives them (same keys, checks and cluster guard; a segment both deliver is
 * stored once and must be identical), the open segment's new bytes as one immutable chunk.
 * Runs until the signal; pg_receivewal is restarted when it stops (server restart, network),
 * resuming from the slot. Repository failures are retried at the next interval: the bytes
 * stay in the local directory and the slot holds them on the server.
 */
export async function walReceive(options: ReceiveOptions, deps: ReceiveDeps): Promise<ReceiveSummary> {
  const facts = await prepare(options, deps);
  const claim = new ArchiveClaim(deps.repo, options.name, deps.now);
  await claim.check(facts.systemId, `the server ${maskUrl(options.url)}`);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const summary: ReceiveSummary = { slot: options.slot, slotCreated: facts.slotCreated, archived: 0, chunks: 0, chunkBytes: 0, restarts: 0, uploadedTo: null };
  const cursors = new Map<string, number>();
  let caughtUpAt = deps.now();
  let fatal: Error | undefined;
  const stopping = new AbortController();
  deps.signal?.addEventListener('abort', () => stopping.abort(), { once: true });

  // pg_receivewal, kept running: a server restart or a network cut ends it; it resumes from the slot.
  const tool = toolPath('pg_receivewal', deps.env);
  const { dbname, env } = libpqEnvironment(options.url, deps.env);
  env.PGAPPNAME = options.slot;
  const args = [`--dbname=${dbname}`, `--directory=${options.dir}`, `--slot=${options.slot}`, '--no-password', '--no-loop', '--status-interval=1', ...(options.synchronous ? ['--synchronous'] : [])];
  let receiver: RunningTool | undefined;
  const supervise = (async () => {
    for (let attempt = 0; !stopping.signal.aborted; attempt += 1) {
      receiver = startTool('pg_receivewal', tool, args, { env, stdout: 'ignore' });
      if (attempt > 0) summary.restarts += 1;
      const ended = await receiver.done.then(
        () => undefined,
        (error: Error) => error,
      );
      if (stopping.signal.aborted) return;
      deps.log.warn(`pg_receivewal stopped (${ended ? errorMessage(ended) : 'exit 0'}); starting it again in 2 s from the slot's position`);
      await sleep(2000, stopping.signal);
    }
  })();

  const archiveLocal = async (file: string) => {
    const full = path.join(options.dir, file);
    const encoded = await encodeWalFile(file, full, deps.now());
    await pushOne({ repo: deps.repo, log: deps.log, now: deps.now }, options.name, { file, ...encoded }, claim);
    const w = parseWalName(file)!;
    if (w.kind === 'segment') {
      // The whole segment is durable: its chunks are no longer needed (fetch prefers the segment anyway).
      const stale = parseChunks(options.name, await deps.repo.list(chunkPrefix(options.name, file))).map((c) => c.key);
      if (stale.length > 0) await deps.repo.delete(stale);
      cursors.delete(file);
    }
    await rm(full, { force: true });
    summary.archived += 1;
  };

  const uploadGrowth = async (partial: string) => {
    const segment = partial.slice(0, -'.partial'.length);
    let cursor = cursors.get(segment);
    if (cursor === undefined) {
      // First sight of this segment (or a restart): continue where the repository's chunks end.
      cursor = contiguousEnd(parseChunks(options.name, await deps.repo.list(chunkPrefix(options.name, segment))));
      cursors.set(segment, cursor);
    }
    let fh: FileHandle;
    try {
      fh = await open(path.join(options.dir, partial), 'r');
    } catch (error) {
      // Finished and renamed between the listing and now: archived whole at the next interval.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let bytes: Buffer;
    try {
      const first = await writtenFrom(fh, cursor, facts.blockBytes, facts.segmentBytes);
      if (first.length === 0) return;
      // A read racing pg_receivewal's write() can see a later byte before an earlier one
      // lands; only what two reads 20 ms apart agree on is uploaded, the rest next time.
      await sleep(20);
      const second = Buffer.alloc(first.length);
      await fh.read(second, 0, first.length, cursor);
      bytes = first.subarray(0, agreedLength(first, second));
    } finally {
      await fh.close();
    }
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end -= 1;
    if (end === 0) return;
    await putChunk(deps.repo, options.name, segment, cursor, bytes.subarray(0, end), facts.segmentBytes, deps.now(), facts.systemId);
    cursors.set(segment, cursor + end);
    summary.chunks += 1;
    summary.chunkBytes += end;
    summary.uploadedTo = { segment, offset: cursor + end };
  };

  let failing = false;
  const tick = async () => {
    try {
      const files = (await readdir(options.dir)).sort();
      // History files sort before the segments of their timeline: pushed first.
      for (const f of files) {
        const w = parseWalName(f);
        if (w && (w.kind === 'segment' || w.kind === 'history')) await archiveLocal(f);
      }
      const partials = files.filter((f) => parseWalName(f)?.kind === 'partial');
      // Older .partial files were closed at a timeline switch: their last bytes go up as chunks, then they go.
      for (const p of partials.slice(0, -1)) {
        await uploadGrowth(p);
        await rm(path.join(options.dir, p), { force: true });
        cursors.delete(p.slice(0, -'.partial'.length));
      }
      const open = partials.at(-1);
      if (open) await uploadGrowth(open);
      caughtUpAt = deps.now();
      // As loud as the warning it ends: whoever saw the one must see the other.
      if (failing) deps.log.warn('the repository is reachable again: caught up');
      failing = false;
    } catch (error) {
      if (error instanceof WalConflictError || error instanceof WalClusterMismatchError) {
        fatal = error;
        stopping.abort();
        return;
      }
      if (!failing) deps.log.warn(`upload failed, retried every ${options.intervalMs} ms (received WAL waits in ${options.dir} and in the slot): ${errorMessage(error)}`);
      failing = true;
    }
  };

  const report = async () => {
    const labels = { name: options.name };
    const now = deps.now();
    deps.metrics.gauge(METRIC.walReceiveHeartbeat, now.getTime() / 1000, labels, 'Count');
    deps.metrics.gauge(METRIC.walReceiveLag, (now.getTime() - caughtUpAt.getTime()) / 1000, labels, 'Seconds');
    try {
      const slot = await slotState(options.url, options.slot);
      if (slot) {
        deps.metrics.gauge(METRIC.walSlotRetainedBytes, slot.retainedBytes, labels, 'Bytes');
        if (slot.safeBytes !== null) deps.metrics.gauge(METRIC.walSlotSafeBytes, slot.safeBytes, labels, 'Bytes');
      }
    } catch {
      // The server is down or restarting: the receiver's own figures still go out.
    }
    await deps.metrics.flush();
  };

  const reportEvery = options.reportEveryMs ?? 15_000;
  let lastReport = 0;
  while (!stopping.signal.aborted) {
    await tick();
    if (Date.now() - lastReport >= reportEvery) {
      lastReport = Date.now();
      await report();
    }
    await sleep(options.intervalMs, stopping.signal);
  }
  // Stopped: pg_receivewal flushes and exits on SIGINT; what it wrote goes up before we return.
  receiver?.kill('SIGINT');
  await supervise;
  if (!fatal) await tick();
  await report();
  if (fatal) throw fatal;
  // Exit 0 says everything received is in the repository: not so while uploads fail.
  if (failing) throw new WalReceiveError('WAL_RECEIVE_UPLOAD', `stopped with received WAL not uploaded (the repository refused it): it waits in ${options.dir} and in the slot ${options.slot}; start wal receive again with the same --dir once the repository is reachable`);
  return summary;
}

/** The slot as the primary sees it: WAL it keeps for the receiver, and how much more it may keep (max_slot_wal_keep_size). */
export async function slotState(url: string, slot: string): Promise<{ retainedBytes: number; safeBytes: number | null; active: boolean } | undefined> {
  const c = await connectPostgres(url, 'ops-automation-receive', { timeoutMs: 5000 });
  try {
    const [r] = (
      await c.query<{ retained: string | null; safe: string | null; active: boolean }>(
        'select (pg_current_wal_lsn() - restart_lsn)::text as retained, safe_wal_size::text as safe, active from pg_replication_slots where slot_name = $1',
        [slot],
      )
    ).rows;
    if (!r) return undefined;
    return { retainedBytes: Number(r.retained ?? 0), safeBytes: r.safe === null ? null : Number(r.safe), active: r.active };
  } finally {
    await c.end().catch(() => undefined);
  }
}


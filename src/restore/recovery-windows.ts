import { listBackups, type BackupEntry } from '../backup/catalog.js';
import { baseCatalogName, type BaseDetails } from '../backup/postgres-base.js';
import { errorMessage } from '../errors.js';
import type { ObjectInfo, Repository } from '../repository/repository.js';
import { parseWalName, segmentIndex, segmentIndexOfLsn, segmentName, walPrefix } from '../wal/names.js';
import { walStatus, type WalStatus } from '../wal/status.js';
import { contiguousEnd, parseChunks } from '../wal/chunks.js';
import { RestoreError } from './errors.js';
import { formatLsn, parseLsn, recoveryPath } from './pitr-plan.js';

/** What one base backup and the WAL after it can restore to. */
export interface RecoveryWindow {
  baseId: string;
  /** The timelines recovery follows from this base (its own first). */
  timelines: number[];
  /** The earliest moment: the base backup's consistency point. */
  from: { time: string; lsn: string };
  /** The latest: the last segment recovery can replay without a gap, and when it was archived (its WAL ends then or earlier). */
  to: { segment: string; archivedAt: string | null } | null;
  /** The segment after `to` that wal receive streamed in chunks: a restore to the end replays into it (on the newest timeline, after a promotion its first segment). */
  streamed?: string;
  /** Why the window ends before the newest archived WAL (a gap, a missing history file). */
  cut?: string;
  /** Why nothing can be restored from this base. */
  problem?: string;
}

export interface RestorePointInfo {
  name: string;
  lsn: string;
  timeline: number;
  at: string;
  /** Whether a window reaches it (its WAL is still kept). */
  reachable: boolean;
}

export interface PitrInfo {
  name: string;
  systemId: string | null;
  wal: WalStatus;
  bases: BackupEntry[];
  windows: RecoveryWindow[];
  restorePoints: RestorePointInfo[];
  /** The newest segment `wal receive` has uploaded in chunks and not yet archived whole, as far as its chunks reach. */
  streamed: StreamedInfo | null;
}

export interface StreamedInfo {
  segment: string;
  /** The LSN its chunks reach (the last whole record before it is where a restore to the end stops). */
  lsn: string;
  bytes: number;
  uploadedAt: string;
  /** Whether it follows a window's last archived segment, so that a restore to the end replays it. */
  reachable: boolean;
}

/** What `wal receive` has streamed past the archive, from the same listing (chunks under wal/<name>/chunks/). */
function streamedOf(name: string, listing: ObjectInfo[], archivedAt: Map<string, string>, windows: RecoveryWindow[], segmentBytes: number | null): StreamedInfo | null {
  const chunks = parseChunks(name, listing).filter((c) => !archivedAt.has(c.segment));
  const segment = chunks.at(-1)?.segment;
  if (!segment || !segmentBytes) return null;
  const mine = chunks.filter((c) => c.segment === segment);
  const bytes = contiguousEnd(mine);
  if (bytes === 0) return null;
  const w = parseWalName(segment)!;
  const lsn = formatLsn(BigInt(segmentIndex(w.segment!, segmentBytes)) * BigInt(segmentBytes) + BigInt(bytes));
  const uploadedAt = mine.filter((c) => c.end <= bytes).reduce((a, c) => (c.uploadedAt > a ? c.uploadedAt : a), new Date(0)).toISOString();
  const reachable = windows.some((x) => x.streamed === segment);
  return { segment, lsn, bytes, uploadedAt, reachable };
}

/**
 * pgBackRest's `info` for one database's point-in-time recovery: per base backup, the window
 * it reaches through the archive (cut at the first gap or missing history file, exactly
 * where a restore would stop), and the restore points opsctl knows of (those its PITR drill
 * made on the live server). Read from the catalogue and one listing of the WAL.
 */
export async function pitrInfo(repo: Repository, name: string, now: Date): Promise<PitrInfo> {
  const bases = (await listBackups(repo, 'postgres', baseCatalogName(name))).filter((b) => b.manifest && !b.broken);
  const wal = await walStatus(repo, name, { now, bases: bases.map((b) => ({ id: b.id, ...(b.manifest!.details as unknown as BaseDetails) })) });
  const prefix = walPrefix(name);
  // One listing for every window (each base backup's path is checked against it).
  const listing = await repo.list(prefix);
  const archivedAt = new Map<string, string>();
  for (const o of listing) if (o.key.endsWith('.zst')) archivedAt.set(o.key.slice(prefix.length, -'.zst'.length), o.lastModified.toISOString());
  const windows: RecoveryWindow[] = [];
  for (const b of bases) windows.push(await windowOf(repo, name, b, wal, archivedAt, listing));
  const restorePoints = bases
    .map((b) => b.drill?.restorePoint)
    .filter((p): p is NonNullable<typeof p> => p !== undefined)
    .map((p) => ({ ...p, reachable: windows.some((w) => reaches(w, p, wal.segmentBytes)) }))
    .sort((a, b) => b.at.localeCompare(a.at));
  const segmentBytes = bases.map((b) => (b.manifest!.details as unknown as BaseDetails).segmentBytes).find((s) => s) ?? wal.segmentBytes;
  return { name, systemId: wal.systemId, wal, bases, windows, restorePoints, streamed: streamedOf(name, listing, archivedAt, windows, segmentBytes) };
}

async function windowOf(repo: Repository, name: string, b: BackupEntry, wal: WalStatus, archivedAt: Map<string, string>, listing: ObjectInfo[]): Promise<RecoveryWindow> {
  const d = b.manifest!.details as unknown as BaseDetails;
  const base = { baseId: b.id, from: { time: b.manifest!.finishedAt, lsn: d.stopLsn } };
  const to = (segment: string) => ({ segment, archivedAt: archivedAt.get(segment) ?? null });
  try {
    const path = await recoveryPath(repo, name, d, wal, { listing });
    const end = path.endSegment ?? d.stopSegment;
    return { ...base, timelines: path.steps.map((s) => s.timeline), to: to(end), ...(path.streamedSegment ? { streamed: path.streamedSegment } : {}) };
  } catch (error) {
    if (!(error instanceof RestoreError)) throw error;
    // The newest timeline cannot be followed: what the base's own timeline still reaches.
    const missing = typeof error.context.missing === 'string' ? error.context.missing : undefined;
    const own = ownTimelineEnd(d, archivedAt, wal.segmentBytes ?? d.segmentBytes);
    if (error.code === 'PITR_OTHER_CLUSTER' || !own) return { ...base, timelines: [d.timeline], to: null, problem: errorMessage(error) };
    return { ...base, timelines: [d.timeline], to: to(own), cut: missing ? `cut at ${missing}, missing from the archive` : errorMessage(error) };
  }
}

/** The last segment of the base's own timeline reached from its start without a gap, if that reaches consistency. */
function ownTimelineEnd(d: BaseDetails, archivedAt: Map<string, string>, segmentBytes: number): string | undefined {
  const stop = segmentIndex(parseWalName(d.stopSegment)!.segment!, segmentBytes);
  let i = segmentIndexOfLsn(d.startLsn, segmentBytes);
  while (archivedAt.has(segmentName(d.timeline, i, segmentBytes))) i += 1;
  return i - 1 >= stop ? segmentName(d.timeline, i - 1, segmentBytes) : undefined;
}

/** Whether recovery from this window can stop at the point: on a timeline it follows, after the base's consistency, before the window's end. */
function reaches(w: RecoveryWindow, p: { lsn: string; timeline: number }, segmentBytes: number | null): boolean {
  if (!w.to || !w.timelines.includes(p.timeline) || segmentBytes === null) return false;
  const end = parseWalName(w.to.segment)!;
  const endLsn = BigInt(segmentIndex(end.segment!, segmentBytes) + 1) * BigInt(segmentBytes);
  return parseLsn(p.lsn) >= parseLsn(w.from.lsn) && (end.timeline !== p.timeline || parseLsn(p.lsn) < endLsn);
}

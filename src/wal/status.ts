import type { Repository } from '../repository/repository.js';
import { parseWalName, segmentIndex, segmentIndexOfLsn, segmentName, walPrefix, type WalName } from './names.js';
import { readWalHeader } from './object.js';
import { archiveSystemId } from './system-id.js';

export interface TimelineRange {
  timeline: number;
  first: string;
  last: string;
  segments: number;
  /** Segments missing between first and last (at most 20 named). */
  missing: string[];
  missingCount: number;
}

export interface WalStatus {
  name: string;
  /** The cluster this archive holds (its first push recorded it); null: not recorded (nothing pushed since 2026-12). */
  systemId: string | null;
  segmentBytes: number | null;
  timelines: TimelineRange[];
  histories: number[];
  partial: string[];
  backupLabels: string[];
  newest: { file: string; archivedAt: string; ageSeconds: number } | null;
  thresholdSeconds: number;
  problems: string[];
  warnings: string[];
}

/**
 * What the archive of one database holds, from a listing and one header read: the
 * archived range per timeline, the segments missing inside it, timelines without their
 * history file, and how old the newest segment is (a push that stopped).
 */
export async function walStatus(repo: Repository, name: string, options: { now?: Date; thresholdSeconds?: number; bases?: { id: string; timeline: number; startLsn: string; systemId?: string }[] } = {}): Promise<WalStatus> {
  const now = options.now ?? new Date();
  const thresholdSeconds = options.thresholdSeconds ?? 3600;
  const prefix = walPrefix(name);
  const objects = (await repo.list(prefix)).filter((o) => o.key.endsWith('.zst'));
  const parsed = objects
    .map((o) => ({ o, w: parseWalName(o.key.slice(prefix.length, -'.zst'.length)) }))
    .filter((x): x is { o: (typeof objects)[number]; w: WalName } => x.w !== undefined);
  const segments = parsed.filter((x) => x.w.kind === 'segment');
  const status: WalStatus = {
    name,
    systemId: (await archiveSystemId(repo, name)) ?? null,
    segmentBytes: null,
    timelines: [],
    histories: parsed.filter((x) => x.w.kind === 'history').map((x) => x.w.timeline).sort((a, b) => a - b),
    partial: parsed.filter((x) => x.w.kind === 'partial').map((x) => x.w.file),
    backupLabels: parsed.filter((x) => x.w.kind === 'backup').map((x) => x.w.file),
    newest: null,
    thresholdSeconds,
    problems: [],
    warnings: [],
  };
  for (const b of options.bases ?? []) {
    if (status.systemId && b.systemId && b.systemId !== status.systemId) status.problems.push(`base backup ${b.id} is of cluster ${b.systemId}, the archive holds cluster ${status.systemId}: it cannot be restored with this WAL`);
  }
  if (segments.length === 0) {
    status.problems.push(`no WAL segment archived under ${repo.url}${prefix}`);
    return status;
  }
  // The furthest segment (highest timeline, then name): what recovery can reach, and what the
  // table's LAST shows. By time, a segment pushed again by hand would be "newest" instead.
  const newest = segments.reduce((a, b) => (b.w.timeline > a.w.timeline || (b.w.timeline === a.w.timeline && b.w.file > a.w.file) ? b : a));
  const header = readWalHeader(newest.w.file, (await repo.getBytes(newest.o.key)) ?? Buffer.alloc(0));
  const segmentBytes = header.bytes;
  status.segmentBytes = segmentBytes;
  if (header.systemId && status.systemId && header.systemId !== status.systemId) status.problems.push(`newest segment ${newest.w.file} is of cluster ${header.systemId}, the archive holds cluster ${status.systemId}`);
  status.newest = { file: newest.w.file, archivedAt: newest.o.lastModified.toISOString(), ageSeconds: Math.round((now.getTime() - newest.o.lastModified.getTime()) / 1000) };
  if (status.newest.ageSeconds > thresholdSeconds) status.warnings.push(`newest segment ${newest.w.file} was archived ${status.newest.ageSeconds} s ago (limit ${thresholdSeconds} s): is archive_command failing, or archive_timeout unset on an idle server?`);

  const byTimeline = new Map<number, number[]>();
  for (const s of segments) (byTimeline.get(s.w.timeline) ?? byTimeline.set(s.w.timeline, []).get(s.w.timeline)!).push(segmentIndex(s.w.segment!, segmentBytes));
  // A kept base backup needs every segment from its own start: a lost first segment is a gap
  // too, though nothing before it was archived to show one.
  const baseStart = new Map<number, number>();
  for (const b of options.bases ?? []) {
    const i = segmentIndexOfLsn(b.startLsn, segmentBytes);
    baseStart.set(b.timeline, Math.min(i, baseStart.get(b.timeline) ?? i));
    if (!byTimeline.has(b.timeline)) byTimeline.set(b.timeline, []);
  }
  for (const [timeline, indexes] of [...byTimeline].sort(([a], [b]) => a - b)) {
    indexes.sort((a, b) => a - b);
    const have = new Set(indexes);
    const missing: string[] = [];
    let missingCount = 0;
    const from = Math.min(indexes[0] ?? Number.POSITIVE_INFINITY, baseStart.get(timeline) ?? Number.POSITIVE_INFINITY);
    if (indexes.length === 0) {
      status.problems.push(`timeline ${timeline}: nothing archived from ${segmentName(timeline, from, segmentBytes)}, where a kept base backup starts: recovery from it cannot begin`);
      continue;
    }
    for (let i = from; i <= indexes[indexes.length - 1]!; i += 1) {
      if (have.has(i)) continue;
      missingCount += 1;
      if (missing.length < 20) missing.push(segmentName(timeline, i, segmentBytes));
    }
    status.timelines.push({ timeline, first: segmentName(timeline, indexes[0]!, segmentBytes), last: segmentName(timeline, indexes[indexes.length - 1]!, segmentBytes), segments: indexes.length, missing, missingCount });
    if (missingCount > 0) status.problems.push(`timeline ${timeline}: ${missingCount} segment(s) missing, first ${missing[0]}${from < indexes[0]! ? ' (from a kept base backup\'s start)' : ''}: recovery cannot pass them`);
    if (timeline > 1 && !status.histories.includes(timeline)) status.problems.push(`timeline ${timeline} has no ${timeline.toString(16).toUpperCase().padStart(8, '0')}.history in the archive: recovery cannot follow it`);
  }
  return status;
}

/** The start of every complete base backup of `name`: what walStatus counts gaps from. */
export async function keptBaseStarts(repo: Repository, name: string): Promise<{ id: string; timeline: number; startLsn: string; systemId?: string }[]> {
  const { listBackups } = await import('../backup/catalog.js');
  const { baseCatalogName } = await import('../backup/postgres-base.js');
  return (await listBackups(repo, 'postgres', baseCatalogName(name)))
    .filter((b) => b.manifest && !b.broken)
    .map((b) => ({ id: b.id, ...(b.manifest!.details as unknown as { timeline: number; startLsn: string; systemId?: string }) }))
    .filter((b) => typeof b.startLsn === 'string');
}

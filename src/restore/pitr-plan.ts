import type { BackupEntry } from '../backup/catalog.js';
import type { BaseDetails } from '../backup/postgres-base.js';
import type { ObjectInfo, Repository } from '../repository/repository.js';
import { parseWalName, segmentIndex, segmentIndexOfLsn, segmentName, walKey, walPrefix } from '../wal/names.js';
import { decodeWalObject } from '../wal/object.js';
import { parseChunks } from '../wal/chunks.js';
import type { WalStatus } from '../wal/status.js';
import { RestoreError } from './errors.js';
import type { PitrTarget } from './postgres-pitr.js';

/** A point-in-time target as opsctl understands it, checked before anything is extracted. */
export type ParsedTarget = { kind: 'end' } | { kind: 'time'; at: Date; text: string } | { kind: 'lsn'; lsn: bigint; text: string } | { kind: 'name'; name: string };

// A date, a time and an explicit zone: what PostgreSQL's recovery_target_time and we read alike.
const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)$/i;

/** `2026-12-04 03:00:00+01`, `2026-12-04T02:00:00Z`: anything without a zone is ambiguous (the server's TimeZone would decide) and refused. */
export function parseTargetTime(text: string): Date {
  const m = TIME.exec(text.trim());
  if (!m) throw new RestoreError('PITR_TARGET', `--to ${JSON.stringify(text)} is not a time with a zone; give one like "2026-12-04 03:00:00+01" or "2026-12-04T02:00:00Z"`, { exitCode: 64 });
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const z = zone!.toUpperCase();
  const offset = z === 'Z' || z === 'UTC' ? 'Z' : z.length === 3 ? `${z}:00` : z.includes(':') ? z : `${z.slice(0, 3)}:${z.slice(3)}`;
  const at = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}.${(frac ?? '0').padEnd(3, '0').slice(0, 3)}${offset}`);
  // Date rolls 2026-02-31 over into March; PostgreSQL refuses it, and so do we.
  const local = new Date(at.getTime() + offsetMinutes(offset) * 60_000);
  if (Number.isNaN(at.getTime()) || local.getUTCDate() !== Number(d) || local.getUTCMonth() + 1 !== Number(mo)) {
    throw new RestoreError('PITR_TARGET', `--to ${JSON.stringify(text)} is not a valid time`, { exitCode: 64 });
  }
  return at;
}

function offsetMinutes(offset: string): number {
  if (offset === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const [h, m] = offset.slice(1).split(':').map(Number) as [number, number];
  return sign * (h * 60 + m);
}

export function parseLsn(text: string): bigint {
  if (!/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(text)) throw new RestoreError('PITR_TARGET', `--to-lsn ${text}: an LSN looks like 16/B374D848`, { exitCode: 64 });
  const [hi, lo] = text.split('/').map((x) => BigInt(`0x${x}`)) as [bigint, bigint];
  return (hi << 32n) + lo;
}

/** The inverse of parseLsn: PostgreSQL's `16/B374D848` form. */
export const formatLsn = (lsn: bigint): string => `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;

export function parseTarget(target: PitrTarget): ParsedTarget {
  const given = [target.time, target.name, target.lsn].filter((x) => x !== undefined);
  if (given.length > 1) throw new RestoreError('PITR_TARGET', 'give one of --to, --to-name, --to-lsn', { exitCode: 64 });
  if (target.time !== undefined) return { kind: 'time', at: parseTargetTime(target.time), text: target.time };
  if (target.lsn !== undefined) return { kind: 'lsn', lsn: parseLsn(target.lsn), text: target.lsn };
  if (target.name !== undefined) {
    if (target.name === '') throw new RestoreError('PITR_TARGET', '--to-name needs the name of a restore point', { exitCode: 64 });
    return { kind: 'name', name: target.name };
  }
  return { kind: 'end' };
}

const detailsOf = (b: BackupEntry) => b.manifest!.details as unknown as BaseDetails;
/**
 * When a base backup is consistent, at the latest: its manifest is written after the stop
 * segment reached the archive, so this is never earlier than the real consistency point.
 */
const consistentAt = (b: BackupEntry) => new Date(b.manifest!.finishedAt);

/**
 * The base backup recovery starts from: the newest complete one whose consistency point
 * precedes the target (pgBackRest's rule). A base backup consistent only after the target
 * would come back later than asked, with exit 0: refused (2), naming what the repository
 * can reach. A restore point's position is known only for those opsctl's drill made (their
 * LSN is in its record); for any other the newest base is used and recovery itself
 * refuses a point it never meets (restore exits 2).
 */
export function chooseBase(all: BackupEntry[], idOrLatest: string, target: ParsedTarget, label: string): BackupEntry {
  const usable = all.filter((b) => b.manifest && !b.broken && detailsOf(b)?.kind === 'base');
  // A restore point opsctl's PITR drill made is known by its LSN (drill.json): a base taken
  // after it cannot reach it, and "latest" must not pick one.
  const point = target.kind === 'name' ? all.map((b) => b.drill?.restorePoint).find((p) => p?.name === target.name) : undefined;
  const reaches = (b: BackupEntry) =>
    target.kind === 'time'
      ? consistentAt(b).getTime() <= target.at.getTime()
      : target.kind === 'lsn'
        ? parseLsn(detailsOf(b).stopLsn) <= target.lsn
        : point
          ? parseLsn(detailsOf(b).stopLsn) <= parseLsn(point.lsn)
          : true;
  const window = () => {
    const oldest = usable.at(-1);
    if (!oldest) return 'the repository holds no base backup';
    return target.kind === 'lsn' || point ? `the oldest base backup ${oldest.id} is consistent from LSN ${detailsOf(oldest).stopLsn}` : `the oldest base backup ${oldest.id} is consistent from ${consistentAt(oldest).toISOString()}`;
  };
  const what = target.kind === 'time' ? target.text : target.kind === 'lsn' ? `LSN ${target.text}` : point ? `restore point ${point.name} (LSN ${point.lsn})` : '';
  if (idOrLatest !== 'latest') {
    const b = usable.find((x) => x.id === idOrLatest);
    if (!b) throw new RestoreError('NOT_A_BASE_BACKUP', `${idOrLatest} is not a complete base backup of ${label} (opsctl backups list postgres)`, { exitCode: 64 });
    if (!reaches(b)) {
      const from = target.kind === 'lsn' || point ? `LSN ${detailsOf(b).stopLsn}` : consistentAt(b).toISOString();
      throw new RestoreError('PITR_TARGET_UNREACHABLE', `${label} base backup ${b.id} is consistent only from ${from}, after the target ${what}: it would come back later than asked. Use an older base backup, or "latest" to pick one (${window()})`);
    }
    return b;
  }
  const b = usable.find(reaches);
  if (!b) throw new RestoreError('PITR_TARGET_UNREACHABLE', `no base backup of ${label} can reach ${what}: ${window()}; nothing was restored`);
  return b;
}

/** One stretch of the WAL recovery reads: segments [from, to] of a timeline. */
export interface PathStep {
  timeline: number;
  from: number;
  /** Inclusive; undefined: up to the newest archived segment of this timeline. */
  to: number | undefined;
}

export interface RecoveryPath {
  steps: PathStep[];
  /** The newest timeline recovery will follow ('latest'). */
  timeline: number;
  /** The newest archived segment on that timeline: a restore "to the end" must replay into it. */
  endSegment: string | undefined;
  /** The segment after it, not archived whole but streamed in chunks (`wal receive`): a restore "to the end" replays into it too. */
  streamedSegment?: string | undefined;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/** `1\t0/3000000\tno recovery target specified` lines: each ancestor timeline and the LSN where it ended. */
export function parseHistory(text: string): { timeline: number; switchLsn: string }[] {
  return text
    .split('\n')
    .map((l) => /^\s*(\d+)\s+([0-9A-F]+\/[0-9A-F]+)/i.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ timeline: Number(m[1]), switchLsn: m[2]!.toUpperCase() }));
}

/**
 * The whole path recovery will take from a base backup, on every timeline it follows
 * (recovery_target_timeline = 'latest', or the one given), checked against the archive
 * before anything is extracted: each history file PostgreSQL will look for, and every
 * segment from the base backup's start to the newest archived one. A gap or a missing
 * history file would end recovery early (or on the wrong timeline) with exit 0.
 */
export async function recoveryPath(
  repo: Repository,
  name: string,
  base: BaseDetails,
  status: WalStatus,
  options: { timeline?: number | undefined; listing?: ObjectInfo[] | undefined } = {},
): Promise<RecoveryPath> {
  // PostgreSQL refuses another cluster's segment only when it reads it, and then ends recovery there.
  const cluster = status.systemId;
  if (base.systemId && cluster && cluster !== base.systemId) {
    throw new RestoreError('PITR_OTHER_CLUSTER', `the base backup is of cluster ${base.systemId}, but the WAL archive of ${name} holds cluster ${cluster} (system identifiers): its WAL cannot be replayed onto it; nothing was restored`, { context: { base: base.systemId, archived: cluster } });
  }
  const seg = base.segmentBytes;
  const known = new Set<number>([...status.timelines.map((t) => t.timeline), ...status.histories]);
  let newest = options.timeline ?? base.timeline;
  if (options.timeline === undefined) {
    // PostgreSQL probes N+1, N+2, … history files and stops at the first missing one.
    const highest = Math.max(base.timeline, ...known);
    for (let t = base.timeline + 1; t <= highest; t += 1) {
      if (!status.histories.includes(t)) {
        throw new RestoreError('PITR_HISTORY_MISSING', `timeline ${t} has no ${hex8(t)}.history in the archive while the archive holds WAL up to timeline ${highest}: recovery would stay on timeline ${t - 1} and come back with the wrong history; nothing was restored`);
      }
    }
    newest = highest;
  }
  const steps: PathStep[] = [];
  const start = segmentIndexOfLsn(base.startLsn, seg);
  if (newest === base.timeline) steps.push({ timeline: newest, from: start, to: undefined });
  else {
    const object = await repo.getBytes(walKey(name, `${hex8(newest)}.history`));
    if (!object) throw new RestoreError('PITR_HISTORY_MISSING', `${hex8(newest)}.history is not in the archive: recovery cannot follow timeline ${newest}; nothing was restored`);
    const history = parseHistory((await decodeWalObject(`${hex8(newest)}.history`, object)).content.toString('utf8'));
    const at = history.findIndex((h) => h.timeline === base.timeline);
    if (at < 0) throw new RestoreError('PITR_TIMELINE', `timeline ${newest} does not descend from timeline ${base.timeline} of the base backup: recovery cannot follow it; nothing was restored`);
    const chain = [...history.slice(at).map((h) => ({ timeline: h.timeline, end: h.switchLsn })), { timeline: newest, end: undefined as string | undefined }];
    if (parseLsn(chain[0]!.end!) < parseLsn(base.stopLsn)) {
      throw new RestoreError('PITR_TIMELINE', `timeline ${base.timeline} ended at ${chain[0]!.end}, before the base backup's consistency point ${base.stopLsn}: timeline ${newest} is not reachable from it; nothing was restored`);
    }
    let from = start;
    for (const link of chain) {
      if (link.end === undefined) steps.push({ timeline: link.timeline, from, to: undefined });
      else {
        // The segment holding the switch point is read from the next timeline's copy.
        const switchSeg = segmentIndexOfLsn(link.end, seg);
        if (switchSeg > from) steps.push({ timeline: link.timeline, from, to: switchSeg - 1 });
        from = Math.max(from, switchSeg);
      }
    }
  }
  const archived = new Map<number, Set<number>>();
  const prefix = walPrefix(name);
  const listing = options.listing ?? (await repo.list(prefix));
  for (const o of listing) {
    const w = parseWalName(o.key.slice(prefix.length).replace(/\.zst$/, ''));
    if (w?.kind !== 'segment') continue;
    (archived.get(w.timeline) ?? archived.set(w.timeline, new Set()).get(w.timeline)!).add(segmentIndex(w.segment!, seg));
  }
  const streamedFromStart = new Set(parseChunks(name, listing).filter((c) => c.offset === 0).map((c) => c.segment));
  let endSegment: string | undefined;
  let streamedSegment: string | undefined;
  let previousEnd: string | undefined;
  for (const step of steps) {
    const have = archived.get(step.timeline) ?? new Set<number>();
    const last = step.to ?? Math.max(step.from - 1, ...have);
    for (let i = step.from; i <= last; i += 1) {
      if (!have.has(i)) {
        const missing = segmentName(step.timeline, i, seg);
        throw new RestoreError('PITR_WAL_GAP', `segment ${missing} is missing from the archive (timeline ${step.timeline}): recovery from this base backup would stop there; nothing was restored`, { context: { missing } });
      }
    }
    if (step.to === undefined && last >= step.from) endSegment = segmentName(step.timeline, last, seg);
    if (step.to === undefined && last < step.from && step.timeline !== base.timeline) {
      const first = segmentName(step.timeline, step.from, seg);
      // Promoted while wal receive streamed it: the new timeline's first segment exists only as
      // chunks (wal fetch serves them). Recovery must reach the old timeline's end, then replay into it.
      if (streamedFromStart.has(first)) {
        endSegment = previousEnd;
        streamedSegment = first;
        continue;
      }
      // A history file says the timeline exists; none of its WAL does: recovery would promote
      // at the switch point, losing all that was done on it.
      throw new RestoreError('PITR_WAL_GAP', `segment ${first} is missing from the archive (timeline ${step.timeline}, which has its history file but no WAL): recovery would end at the switch point; nothing was restored`, { context: { missing: first } });
    }
    if (last >= step.from) previousEnd = segmentName(step.timeline, last, seg);
  }
  if (steps.length === 1 && !endSegment) throw new RestoreError('PITR_NO_WAL', `the archive holds no WAL of timeline ${base.timeline} from the base backup's start: it cannot be made consistent; nothing was restored`);
  if (!streamedSegment && endSegment) {
    // wal fetch serves the segment after the newest archived one from its chunks: recovery reads on into it.
    const next = segmentName(newest, segmentIndex(parseWalName(endSegment)!.segment!, seg) + 1, seg);
    if (streamedFromStart.has(next)) streamedSegment = next;
  }
  return { steps, timeline: newest, endSegment, ...(streamedSegment ? { streamedSegment } : {}) };
}

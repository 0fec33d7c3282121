/**
 * WAL file names as PostgreSQL archives them (src/include/access/xlog_internal.h):
 * TTTTTTTTXXXXXXXXYYYYYYYY segments (timeline, log, segment), with `.partial` for the last
 * segment of an old timeline at promotion, `.XXXXXXXX.backup` backup-history files, and
 * TTTTTTTT.history timeline histories.
 */
export type WalKind = 'segment' | 'partial' | 'backup' | 'history';

export interface WalName {
  file: string;
  kind: WalKind;
  timeline: number;
  /** Segment number counted from 0 across log ids (log * segmentsPerLog + seg); history files have none. */
  segment?: { log: number; seg: number };
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial|\.[0-9A-F]{8}\.backup)?$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;

export function parseWalName(file: string): WalName | undefined {
  const h = HISTORY.exec(file);
  if (h) return { file, kind: 'history', timeline: Number.parseInt(h[1]!, 16) };
  const m = SEGMENT.exec(file);
  if (!m) return undefined;
  const kind: WalKind = m[4] === '.partial' ? 'partial' : m[4] ? 'backup' : 'segment';
  return { file, kind, timeline: Number.parseInt(m[1]!, 16), segment: { log: Number.parseInt(m[2]!, 16), seg: Number.parseInt(m[3]!, 16) } };
}

/** Segments per log id: 4 GiB / segment size (256 for the default 16 MiB). */
export const segmentsPerLog = (segmentBytes: number) => Math.floor(0x1_0000_0000 / segmentBytes);

export const segmentIndex = (s: { log: number; seg: number }, segmentBytes: number) => s.log * segmentsPerLog(segmentBytes) + s.seg;

export function segmentName(timeline: number, index: number, segmentBytes: number): string {
  const per = segmentsPerLog(segmentBytes);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(Math.floor(index / per))}${hex(index % per)}`;
}

/** The index of the segment holding an LSN (`16/B374D848`), counted from the start of WAL. */
export function segmentIndexOfLsn(lsn: string, segmentBytes: number): number {
  const [hi, lo] = lsn.split('/').map((x) => Number.parseInt(x, 16)) as [number, number];
  return Number((BigInt(hi) * 0x1_0000_0000n + BigInt(lo)) / BigInt(segmentBytes));
}

/** The segment holding an LSN. */
export const segmentOfLsn = (timeline: number, lsn: string, segmentBytes: number): string => segmentName(timeline, segmentIndexOfLsn(lsn, segmentBytes), segmentBytes);

export const walPrefix = (name: string) => `wal/${name}/`;
export const walKey = (name: string, file: string) => `${walPrefix(name)}${file}.zst`;

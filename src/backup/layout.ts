export const COMPONENTS = ['postgres', 'redis', 'knowledge'] as const;
export type Component = (typeof COMPONENTS)[number];

export const MANIFEST = 'manifest.json';
export const VERIFICATION = 'verification.json';
/** Created exclusively when a run claims the id: who owns this backup directory. */
export const RESERVATION = 'reservation.json';
export const DRILL = 'drill.json';

const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-(\d+))?$/;

/** A backup id is its UTC start time, `YYYYMMDDTHHMMSSZ`, so keys sort by time. */
export function formatBackupId(at: Date, suffix = 0): string {
  const iso = at.toISOString(); // 2026-02-14T04:00:00.000Z
  const base = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return suffix > 0 ? `${base}-${suffix}` : base;
}

export function isBackupId(value: string): boolean {
  return ID.test(value);
}

export function backupIdTime(id: string): Date {
  const m = ID.exec(id);
  if (!m) throw new Error(`not a backup id: ${id}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** Newest first; the numeric suffix breaks ties within one second. */
export function compareBackupIdsDesc(a: string, b: string): number {
  const ta = backupIdTime(a).getTime();
  const tb = backupIdTime(b).getTime();
  if (ta !== tb) return tb - ta;
  return suffixOf(b) - suffixOf(a);
}

function suffixOf(id: string): number {
  return Number(ID.exec(id)?.[7] ?? 0);
}

export function backupPrefix(component: Component, name: string, id?: string): string {
  return id ? `${component}/${name}/${id}/` : `${component}/${name}/`;
}

/** Base backups sit beside the dumps, in a catalogue of their own: `postgres/<name>/base/<id>/`. */
export const baseCatalogName = (name: string) => `${name}/base`;

import type * as z from 'zod';
import type { ObjectInfo, Repository } from '../repository/repository.js';
import { OpsError } from '../errors.js';
import { stringifyPrepared } from '../util/prepared-json.js';
import {
  DRILL,
  MANIFEST,
  VERIFICATION,
  backupIdTime,
  backupPrefix,
  compareBackupIdsDesc,
  isBackupId,
  type Component,
} from './layout.js';
import { drillSchema, manifestSchema, verificationSchema, type Drill, type Manifest, type Verification } from './manifest.js';

export interface BackupEntry {
  component: Component;
  name: string;
  id: string;
  startedAt: Date;
  /** Absent: the backup is incomplete (being written, or crashed) or broken, and must not be used. */
  manifest?: Manifest;
  /**
   * Why this backup cannot be used although something says it is complete: a manifest that
   * does not parse, or one whose payload is missing or of another size. Never counted as a
   * backup by `latest`, restore or retention; listed so a person sees it.
   */
  broken?: string;
  verification?: Verification;
  drill?: Drill;
  objects: ObjectInfo[];
  /** Newest object time: how long ago anything was written here. */
  lastWrite: Date;
}

/**
 * No such backup. For an id the caller typed (a refusal of their input: 64) the nearest
 * valid choice is suggested; "latest" with nothing complete is the repository's state (2).
 */
export class BackupNotFoundError extends OpsError {
  constructor(component: Component, name: string, id: string, suggestion?: string) {
    super('BACKUP_NOT_FOUND', `no complete ${component} backup "${id}" for ${name}${suggestion ? ` (did you mean ${suggestion}?)` : ''} (see: opsctl backups list ${component})`, {
      context: { component, name, id, ...(suggestion ? { suggestion } : {}) },
      exitCode: id === 'latest' ? 2 : 64,
    });
    this.name = 'BackupNotFoundError';
  }
}

/** Edit distance, for "did you mean": small strings only (ids and words). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The choice nearest to what was typed, when it is near enough to be a typo. */
export function nearest(typed: string, choices: string[]): string | undefined {
  let best: { choice: string; d: number } | undefined;
  for (const choice of choices) {
    const d = distance(typed.toLowerCase(), choice.toLowerCase());
    if (!best || d < best.d) best = { choice, d };
  }
  return best && best.d <= Math.max(2, Math.floor(typed.length / 4)) ? best.choice : undefined;
}

export class BackupBrokenError extends OpsError {
  constructor(component: Component, name: string, id: string, reason: string) {
    super('BACKUP_BROKEN', `${component} backup "${id}" for ${name} is broken: ${reason} (see: opsctl backups list ${component})`, {
      context: { component, name, id, reason },
    });
    this.name = 'BackupBrokenError';
  }
}

export class CorruptRecordError extends OpsError {
  constructor(key: string, reason: string) {
    super('RECORD_CORRUPT', `${key} is not a valid record: ${reason}`, { context: { key } });
    this.name = 'CorruptRecordError';
  }
}

async function readRecord<T>(repo: Repository, key: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const bytes = await repo.getBytes(key);
  if (!bytes) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new CorruptRecordError(key, (error as Error).message);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new CorruptRecordError(key, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/** The objects under one component/name, by backup id, newest id first: one listing, no record read. */
async function backupObjects(repo: Repository, component: Component, name: string): Promise<[string, ObjectInfo[]][]> {
  const prefix = backupPrefix(component, name);
  const byId = new Map<string, ObjectInfo[]>();
  for (const object of await repo.list(prefix)) {
    const id = object.key.slice(prefix.length).split('/')[0] ?? '';
    if (!isBackupId(id)) continue;
    const list = byId.get(id) ?? [];
    list.push(object);
    byId.set(id, list);
  }
  return [...byId.keys()].sort(compareBackupIdsDesc).map((id) => [id, byId.get(id) ?? []]);
}

/** One backup's entry from its listed objects: its manifest, verification and drill records read and checked. */
async function readEntry(repo: Repository, component: Component, name: string, id: string, files: ObjectInfo[], manifestOnly = false): Promise<BackupEntry> {
  const prefix = backupPrefix(component, name);
  const names = new Set(files.map((f) => f.key.slice(prefix.length + id.length + 1)));
  const base = backupPrefix(component, name, id);
  const entry: BackupEntry = {
    component,
    name,
    id,
    startedAt: backupIdTime(id),
    objects: files,
    lastWrite: new Date(Math.max(...files.map((f) => f.lastModified.getTime()))),
  };
  // One bad record spoils only its own backup: the rest of the repository stays usable.
  // A corrupt verification or drill record only means "not verified / not drilled".
  const read = async <T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> => {
    if (!names.has(file)) return undefined;
    try {
      return await readRecord(repo, base + file, schema);
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      if (file === MANIFEST) entry.broken = error.message;
      return undefined;
    }
  };
  const manifest = await read(MANIFEST, manifestSchema);
  const verification = manifestOnly ? undefined : await read(VERIFICATION, verificationSchema);
  const drill = manifestOnly ? undefined : await read(DRILL, drillSchema);
  if (manifest) {
    const payload = files.find((f) => f.key === manifest.payload.key);
    if (!payload) entry.broken = `manifest present but its payload ${manifest.payload.key} is missing`;
    else if (payload.size !== manifest.payload.bytes) entry.broken = `payload ${manifest.payload.key} holds ${payload.size} bytes, manifest says ${manifest.payload.bytes}`;
    else entry.manifest = manifest;
  }
  if (entry.manifest && verification) entry.verification = verification;
  if (entry.manifest && drill) entry.drill = drill;
  return entry;
}

/** Every backup of one component/name, newest first, with its records. One listing, then small reads. */
export async function listBackups(repo: Repository, component: Component, name: string): Promise<BackupEntry[]> {
  return Promise.all((await backupObjects(repo, component, name)).map(([id, files]) => readEntry(repo, component, name, id, files)));
}

/**
 * `latest` = the newest complete backup; otherwise the id given, which must be complete.
 * Only the records of the backups it looks at are read, newest first: a manifest lists every
 * table (6.6 MB at 50,000 tables), and `latest` among thirty backups read all thirty before.
 * Where nothing it looked at will do, the whole listing decides the refusal and its "did you mean".
 */
export async function findBackup(repo: Repository, component: Component, name: string, idOrLatest: string, options: { manifestOnly?: boolean } = {}): Promise<BackupEntry> {
  for (const [id, files] of await backupObjects(repo, component, name)) {
    if (idOrLatest !== 'latest' && id !== idOrLatest) continue;
    const entry = await readEntry(repo, component, name, id, files, options.manifestOnly);
    if (entry.manifest) return entry;
    if (idOrLatest !== 'latest') break;
  }
  return pickBackup(await listBackups(repo, component, name), component, name, idOrLatest);
}

/**
 * The backup a verify of `latest` must judge: the newest that is complete or broken
 * (incomplete ones, still being written, are passed over). Broken throws: verifying an older
 * intact backup instead would report success while the newest cannot be restored. Read newest
 * first and no further: reading every backup's manifest (6.6 MB each at 50,000 tables) made a
 * verify's start grow with the retention. Only manifests are read (`entry.verification` and
 * `entry.drill` stay unset): the earlier verification record of a 50,000-table backup cost
 * 140 ms to read and check, for a verify that replaces it.
 */
export async function newestToJudge(repo: Repository, component: Component, name: string): Promise<BackupEntry> {
  for (const [id, files] of await backupObjects(repo, component, name)) {
    const entry = await readEntry(repo, component, name, id, files, true);
    if (entry.broken) throw new BackupBrokenError(component, name, entry.id, entry.broken);
    if (entry.manifest) return entry;
  }
  throw new BackupNotFoundError(component, name, 'latest');
}

/** `findBackup` on a listing already read. */
export function pickBackup(all: BackupEntry[], component: Component, name: string, idOrLatest: string): BackupEntry {
  const found = idOrLatest === 'latest' ? all.find((b) => b.manifest) : all.find((b) => b.id === idOrLatest);
  if (found?.broken) throw new BackupBrokenError(component, name, found.id, found.broken);
  if (!found?.manifest) throw new BackupNotFoundError(component, name, idOrLatest, idOrLatest === 'latest' ? undefined : nearest(idOrLatest, ['latest', ...all.filter((b) => b.manifest && !b.broken).map((b) => b.id)]));
  return found;
}

/** The exact bytes a record is stored as: JSON.stringify(record, null, 2), a prepared property's JSON spliced in (util/prepared-json.ts). */
export function recordBytes(record: unknown): string {
  return stringifyPrepared(record) + '\n';
}

export async function writeRecord(repo: Repository, component: Component, name: string, id: string, file: string, record: unknown): Promise<void> {
  await repo.putBytes(backupPrefix(component, name, id) + file, recordBytes(record));
}

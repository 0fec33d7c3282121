import { findBackup, listBackups, type BackupEntry } from '../backup/catalog.js';
import { COMPONENTS, isBackupId, type Component } from '../backup/layout.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { DrUsageError } from './errors.js';
import { RestoreRefusedError } from '../restore/errors.js';

export interface DrRestoreRequest {
  /** `component/name` -> where it goes (a database URL, a Redis URL or data directory, a directory). */
  targets: Map<string, string>;
  /** `component/name` -> backup id; absent: the newest verified backup, else the newest complete one. */
  backups: Map<string, string>;
  /** `component/name` -> the confirmation a non-empty target needs (its database name, host:port or path). */
  confirms: Map<string, string>;
}

export interface DrRestoreResult {
  component: Component;
  name: string;
  backupId: string;
  target: string;
  ok: boolean;
  seconds: number;
  detail: string;
}

/** `postgres/callcenter=postgresql://…` -> [`postgres/callcenter`, `postgresql://…`]; every malformed one named at once. */
export function parseAssignments(values: string[], option: string): Map<string, string> {
  const out = new Map<string, string>();
  const bad: string[] = [];
  for (const v of values) {
    const m = /^([a-z]+)\/([^=]+)=(.+)$/.exec(v);
    if (!m || !COMPONENTS.includes(m[1] as Component)) bad.push(v);
    else out.set(`${m[1]}/${m[2]}`, m[3]!);
  }
  if (bad.length > 0) throw new DrUsageError(`${option} takes COMPONENT/NAME=VALUE with COMPONENT one of ${COMPONENTS.join(', ')}; not: ${bad.join(', ')}`);
  return out;
}

async function chooseBackup(repo: Repository, component: Component, name: string, id: string | undefined): Promise<BackupEntry> {
  if (id) {
    if (!isBackupId(id) && id !== 'latest') throw new DrUsageError(`--backup ${component}/${name}=${id}: not a backup id like 20260214T040000Z`);
    return findBackup(repo, component, name, id);
  }
  const entries = (await listBackups(repo, component, name)).filter((e) => e.manifest && !e.broken);
  const chosen = entries.find((e) => e.verification?.ok) ?? entries[0];
  if (!chosen) throw new DrUsageError(`the repository holds no complete backup of ${component}/${name}: opsctl dr plan lists what it holds`);
  return chosen;
}

/**
 * Runs the plan's restores into the named targets, one after another, through the same
 * restore code as `opsctl restore` (checksums proven, non-empty targets refused unless
 * confirmed). Needs no configuration: what to restore comes from the repository.
 */
export async function drRestore(repo: Repository, request: DrRestoreRequest, deps: { log: Log; env?: NodeJS.ProcessEnv }): Promise<DrRestoreResult[]> {
  if (request.targets.size === 0) throw new DrUsageError('name at least one --target COMPONENT/NAME=TARGET (opsctl dr plan prints them)');
  for (const key of request.backups.keys()) if (!request.targets.has(key)) throw new DrUsageError(`--backup ${key}=… has no --target ${key}=…`);
  const results: DrRestoreResult[] = [];
  for (const [key, target] of request.targets) {
    const [component, ...rest] = key.split('/') as [Component, ...string[]];
    const name = rest.join('/');
    const started = Date.now();
    const confirm = request.confirms.get(key);
    let entry: BackupEntry | undefined;
    try {
      entry = await chooseBackup(repo, component, name, request.backups.get(key));
      const detail = await restoreOne(entry, target, confirm, repo, deps);
      results.push({ component, name, backupId: entry.id, target: maskUrl(target), ok: detail.ok, seconds: (Date.now() - started) / 1000, detail: detail.text });
    } catch (error) {
      if (error instanceof DrUsageError) throw error;
      // The restore code names its own --confirm; here the option takes the target's key as well.
      const detail = error instanceof RestoreRefusedError ? `target ${String(error.context.target)} is not empty (${String(error.context.what)}): add --confirm ${key}=${String(error.context.target)} to restore over it` : errorMessage(error);
      results.push({ component, name, backupId: entry?.id ?? '-', target: maskUrl(target), ok: false, seconds: (Date.now() - started) / 1000, detail });
    }
  }
  return results;
}

async function restoreOne(entry: BackupEntry, target: string, confirm: string | undefined, repo: Repository, deps: { log: Log; env?: NodeJS.ProcessEnv }): Promise<{ ok: boolean; text: string }> {
  const component = entry.component;
  const key = `${component}/${entry.name}`;
  if (component === 'postgres') {
    if (!/^postgres(ql)?:\/\//.test(target)) throw new DrUsageError(`--target ${key}=… must be a postgresql:// URL of the database to create or fill`);
    const { restorePostgres } = await import('../restore/postgres-restore.js');
    const r = await restorePostgres(entry, { targetUrl: target, confirm }, { repo, log: deps.log, ...(deps.env ? { env: deps.env } : {}) });
    if (r.mismatches.length > 0) return { ok: false, text: `${r.mismatches.length} tables differ from the backup's counts, e.g. ${r.mismatches[0]!.table}` };
    return { ok: true, text: r.countsFrom === 'verification' ? `${r.compared} tables, row counts equal the backup's` : 'restored; row counts not compared (backup never verified)' };
  }
  if (component === 'redis') {
    const logical = (entry.manifest?.details as { mode?: string } | undefined)?.mode === 'logical';
    const isUrl = /^rediss?:\/\//.test(target);
    if (logical && !isUrl) throw new DrUsageError(`--target ${key}=… must be redis://host:port: the backup is logical (RESTORE into a server)`);
    if (!logical && isUrl) throw new DrUsageError(`--target ${key}=… must be a data directory: the backup is an RDB file for a stopped redis-server`);
    const { placeRdbFile, restoreRedisLogical } = await import('../restore/redis-restore.js');
    const r = logical ? await restoreRedisLogical(entry, target, { confirm }, { repo, log: deps.log }) : await placeRdbFile(entry, target, { confirm }, { repo });
    return { ok: true, text: logical ? `${r.restored} keys restored${r.expiredSkipped ? `, ${r.expiredSkipped} expired skipped` : ''}` : `dump.rdb placed in ${r.target}: start redis-server there` };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(target)) throw new DrUsageError(`--target ${key}=… must be a local directory`);
  const { restoreKnowledge } = await import('../restore/knowledge-restore.js');
  const r = await restoreKnowledge(entry, target, { confirm }, { repo });
  return { ok: true, text: `${r.files} files, ${r.directories} directories, ${r.symlinks} symlinks; every sha256 checked` };
}

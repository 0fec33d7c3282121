import { abortable } from '../util/concurrency.js';
import { DrillInterruptedError } from './errors.js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BackupEntry } from '../backup/catalog.js';
import type { Drill } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import type { FileRecord } from '../knowledge/archive.js';
import { compareEntries } from '../knowledge/extract.js';
import { walkDirectory } from '../knowledge/walk.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { restoreKnowledge } from '../restore/knowledge-restore.js';
import { drillRecord, type DrillDeps } from './record.js';
import { wasInterrupted } from '../process/interrupted.js';

const MAX_DIFFERENCES = 20;

/** What a restored tree holds, as the backup's walker records it (sha256 of every file). */
async function recordTree(root: string): Promise<{ records: FileRecord[]; skipped: string[] }> {
  const skipped: string[] = [];
  const records: FileRecord[] = [];
  for await (const e of walkDirectory(root, skipped)) {
    const base = { path: e.path, type: e.type, mode: e.mode, size: e.size, ...(e.linkname ? { linkname: e.linkname } : {}) };
    if (e.type !== 'file') {
      records.push(base);
      continue;
    }
    const h = createHash('sha256');
    for await (const c of await e.open!()) h.update(c as Buffer);
    records.push({ ...base, sha256: h.digest('hex') });
  }
  return { records, skipped };
}

/**
 * Level 4 for the knowledge base: the newest backup restored through the restore path into
 * a scratch directory, then the restored tree walked as a backup would walk it and every
 * entry compared with the manifest: presence, type, sha256 and size of files, link
 * targets, and modes (without set-user/group-id, which a restore never sets).
 */
export async function drillKnowledge(entry: BackupEntry, deps: DrillDeps & { repo: Repository; log: Log }): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const dir = await mkdtemp(path.join(deps.scratchRoot ?? os.tmpdir(), 'ops-drill-knowledge-'));
  const tree = path.join(dir, 'tree');
  const started = Date.now();
  try {
    await abortable(restoreKnowledge(entry, tree, {}, deps), deps.signal);
    const restoreSeconds = (Date.now() - started) / 1000;
    await deps.afterRestore?.(tree);
    const checkStarted = Date.now();
    const expected = ((entry.manifest?.details as { entries?: FileRecord[] } | undefined)?.entries ?? []) as FileRecord[];
    const { records, skipped } = await abortable(recordTree(tree), deps.signal);
    const differences = compareEntries(expected, records).map((d) => d.replace('missing from the archive', 'missing from the restored tree').replace('in the archive but not in the manifest', 'in the restored tree but not in the manifest'));
    const byPath = new Map(records.map((r) => [r.path, r]));
    for (const e of expected) {
      const r = byPath.get(e.path);
      if (r && r.type === e.type && e.type !== 'symlink' && (r.mode & 0o1777) !== (e.mode & 0o1777)) differences.push(`${e.path}: mode ${(r.mode & 0o7777).toString(8)}, the manifest says ${(e.mode & 0o7777).toString(8)}`);
    }
    for (const s of skipped) differences.push(`${s}: not a regular file, directory or link`);
    const shown = differences.slice(0, MAX_DIFFERENCES);
    if (differences.length > MAX_DIFFERENCES) shown.push(`… ${differences.length - MAX_DIFFERENCES} more`);
    return drillRecord(entry, now(), {
      scratch: tree,
      restoreSeconds,
      checkSeconds: (Date.now() - checkStarted) / 1000,
      compared: expected.length,
      differences: shown,
    });
  } catch (error) {
    if (wasInterrupted(deps.signal, error)) throw new DrillInterruptedError(`knowledge/${entry.name}`, error);
    return drillRecord(entry, now(), { scratch: tree, restoreSeconds: (Date.now() - started) / 1000, compared: 0, failure: `restore failed: ${errorMessage(error)}` });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

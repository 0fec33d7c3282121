import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { listBackups, type BackupEntry } from './catalog.js';
import type { Component } from './layout.js';

export interface RetentionPolicy {
  maxAgeDays: number;
  /** Never delete the newest K verified backups (or the newest K complete ones while none is verified). */
  keepVerified: number;
}

/** An incomplete backup younger than this may still be being written. */
export const INCOMPLETE_GRACE_MS = 24 * 3600 * 1000;

export type Decision =
  | { id: string; action: 'keep'; reason: string }
  | { id: string; action: 'delete'; reason: string; keys: string[]; bytes: number }
  | { id: string; action: 'skip'; reason: string };

/**
 * Decide, without touching anything, what retention does to one component's backups.
 * A job that stopped for longer than the retention period still leaves the newest
 * verified backups in place: age alone never takes the last good copies.
 */
export function planRetention(entries: BackupEntry[], policy: RetentionPolicy, now: Date): Decision[] {
  const newestFirst = [...entries].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
  const complete = newestFirst.filter((e) => e.manifest);
  const verified = complete.filter((e) => e.verification?.ok);
  const protectedIds = new Set((verified.length > 0 ? verified : complete).slice(0, policy.keepVerified).map((e) => e.id));
  const cutoff = now.getTime() - policy.maxAgeDays * 86_400_000;

  return newestFirst.map((entry): Decision => {
    const bytes = entry.objects.reduce((sum, o) => sum + o.size, 0);
    const keys = entry.objects.map((o) => o.key);
    if (entry.broken) {
      // Never counted among the kept; kept as evidence until its age would have removed it.
      if (entry.startedAt.getTime() < cutoff) return { id: entry.id, action: 'delete', reason: `broken (${entry.broken}) and older than ${policy.maxAgeDays} days`, keys, bytes };
      return { id: entry.id, action: 'keep', reason: `broken, not counted: ${entry.broken}` };
    }
    if (!entry.manifest) {
      if (now.getTime() - entry.lastWrite.getTime() < INCOMPLETE_GRACE_MS) {
        return { id: entry.id, action: 'skip', reason: 'incomplete, may still be written' };
      }
      return { id: entry.id, action: 'delete', reason: 'incomplete (no manifest) for over a day', keys, bytes };
    }
    if (protectedIds.has(entry.id)) {
      return { id: entry.id, action: 'keep', reason: verified.length > 0 ? `among newest ${policy.keepVerified} verified` : `among newest ${policy.keepVerified} (none verified yet)` };
    }
    if (entry.startedAt.getTime() < cutoff) {
      return { id: entry.id, action: 'delete', reason: `older than ${policy.maxAgeDays} days`, keys, bytes };
    }
    return { id: entry.id, action: 'keep', reason: `within ${policy.maxAgeDays} days` };
  });
}

export interface PruneResult {
  component: Component;
  name: string;
  dryRun: boolean;
  decisions: Decision[];
  deleted: number;
  freedBytes: number;
}

export async function pruneBackups(
  repo: Repository,
  component: Component,
  name: string,
  policy: RetentionPolicy,
  options: { dryRun: boolean; now?: Date; log: Log },
): Promise<PruneResult> {
  const now = options.now ?? new Date();
  const decisions = planRetention(await listBackups(repo, component, name), policy, now);
  let deleted = 0;
  let freedBytes = 0;
  for (const d of decisions) {
    if (d.action !== 'delete') continue;
    if (!options.dryRun) {
      // Manifest first: from that moment on the backup no longer counts as complete.
      const ordered = [...d.keys].sort((a, b) => Number(b.endsWith('/manifest.json')) - Number(a.endsWith('/manifest.json')));
      await repo.delete(ordered);
      options.log.info(`pruned ${component}/${name}/${d.id}`, { reason: d.reason, bytes: d.bytes });
    }
    deleted += 1;
    freedBytes += d.bytes;
  }
  return { component, name, dryRun: options.dryRun, decisions, deleted, freedBytes };
}

/** Abort multipart uploads / remove partial files left by crashed writers. */
export async function cleanupIncompleteWrites(repo: Repository, now = new Date()): Promise<number> {
  return repo.cleanupIncomplete(new Date(now.getTime() - INCOMPLETE_GRACE_MS));
}

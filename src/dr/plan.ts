import { listBackups, type BackupEntry } from '../backup/catalog.js';
import { baseCatalogName, COMPONENTS, type Component } from '../backup/layout.js';
import { walStatus } from '../wal/status.js';
import type { Repository } from '../repository/repository.js';
import { shellQuote } from '../util/shell-quote.js';

/** What one target of the repository can be restored from. */
export interface PlanItem {
  component: Component;
  name: string;
  /** The backup `dr restore` takes: the newest that passed verification, else the newest complete one. */
  backupId: string;
  takenAt: string;
  bytes: number;
  verifiedLevel: number | null;
  drillOk: boolean | null;
  /** Where the data came from, as the backup's own configuration says (masked). */
  source: string | null;
  /** How it was backed up (codec, mode), from the manifest. */
  format: string;
  /** What a target for it looks like. */
  targetKind: string;
  /** The exact command that restores it; only the target is left to fill in. */
  command: string;
  /** Complete backups of this target in the repository, this one included. */
  backups: number;
  /** Why this target cannot be restored, when none of its backups can. */
  problem?: string;
}

export interface DrPlan {
  repository: string;
  items: PlanItem[];
  /** Every target name found, with or without a usable backup. */
  targets: number;
}

const TARGET_KIND: Record<string, string> = {
  postgres: 'postgresql://user@host:5432/database (created if missing; must be empty)',
  'postgres-base': 'an empty data directory owned by the server\'s user, and a free port (the restored cluster starts there, promoted at the moment asked)',
  'redis-logical': 'redis://host:port (an empty server)',
  'redis-rdb': '/path/to/redis/data-dir (of a stopped redis-server; dump.rdb is placed there)',
  knowledge: '/path/to/directory (created if missing; must be empty)',
};

/** The targets under a component's prefix: the first path segment of every key. */
async function namesOf(repo: Repository, component: Component): Promise<string[]> {
  const objects = await repo.list(`${component}/`);
  return [...new Set(objects.map((o) => o.key.slice(component.length + 1).split('/')[0]!).filter(Boolean))].sort();
}

function sourceOf(entry: BackupEntry): string | null {
  const m = entry.manifest!;
  const config = m.config as { effective?: Record<string, Record<string, { value?: string } | null>> } | undefined;
  const carried = config?.effective?.[m.component]?.[m.name];
  const fromConfig = typeof carried === 'object' && carried?.value ? carried.value : typeof carried === 'string' ? carried : undefined;
  const fromManifest = (m.source as { url?: string; path?: string }).url ?? (m.source as { path?: string }).path;
  return fromConfig ?? fromManifest ?? null;
}

function withoutPassword(url: string | null): string {
  try {
    const u = new URL(url ?? '');
    if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error('not a PostgreSQL URL');
    u.password = '';
    return u.toString();
  } catch {
    return 'postgresql://localhost:5432/postgres';
  }
}

/** What a plan item says of the backup it chose. */
function chosenFields(entry: BackupEntry): Pick<PlanItem, 'backupId' | 'takenAt' | 'bytes' | 'verifiedLevel' | 'drillOk' | 'source'> {
  const m = entry.manifest!;
  return { backupId: entry.id, takenAt: m.startedAt, bytes: m.payload.bytes, verifiedLevel: entry.verification?.levelPassed ?? null, drillOk: entry.drill?.ok ?? null, source: sourceOf(entry) };
}


/**
 * Recovery from the repository alone: every component and target found in it, the backup
 * to restore (newest verified, else newest complete), where it came from, and the exact
 * `opsctl dr restore` command. Needs no configuration: the backups carry their own.
 */
export async function drPlan(repo: Repository, repositoryUrl: string): Promise<DrPlan> {
  const items: PlanItem[] = [];
  /** Restorable base backups per database, newest first: the point-in-time items below. */
  const basesOf = new Map<string, BackupEntry[]>();
  let targets = 0;
  for (const component of COMPONENTS) {
    for (const name of await namesOf(repo, component)) {
      targets += 1;
      if (component === 'postgres') {
        const bases = (await listBackups(repo, 'postgres', baseCatalogName(name))).filter((e) => e.manifest && !e.broken && (e.manifest.details as { walArchived?: boolean }).walArchived !== false);
        if (bases.length > 0) basesOf.set(name, bases);
      }
      const entries = (await listBackups(repo, component, name)).filter((e) => e.manifest && !e.broken);
      const chosen = entries.find((e) => e.verification?.ok) ?? entries[0];
      if (!chosen?.manifest) {
        // Base backups only (point in time): the item below offers them; "no complete backup" would be false.
        if (basesOf.has(name) && component === 'postgres') continue;
        items.push({ component, name, backupId: '-', takenAt: '-', bytes: 0, verifiedLevel: null, drillOk: null, source: null, format: '-', targetKind: '-', command: '-', backups: 0, problem: 'no complete backup' });
        continue;
      }
      const m = chosen.manifest;
      const mode = (m.details as { mode?: string } | undefined)?.mode;
      const kind = component === 'redis' ? `redis-${mode === 'logical' ? 'logical' : 'rdb'}` : component;
      const placeholder = component === 'postgres' ? 'postgresql://HOST:5432/DATABASE' : kind === 'redis-logical' ? 'redis://HOST:6379' : '/PATH';
      items.push({
        component,
        name,
        ...chosenFields(chosen),
        format: `${m.payload.format}${mode ? ` (${mode})` : ''}, ${m.payload.compression}`,
        targetKind: TARGET_KIND[kind]!,
        command: `opsctl dr restore --repository ${shellQuote(repositoryUrl)} --backup ${component}/${shellQuote(name)}=${chosen.id} --target ${component}/${shellQuote(name)}=${placeholder}`,
        backups: entries.length,
        ...(chosen.verification?.ok ? {} : { problem: chosen.verification ? `newest verification failed: ${chosen.verification.failure}` : 'not verified: run opsctl verify before trusting it' }),
      });
    }
  }
  // Point-in-time recovery: base backups and the WAL after them reach any moment from the
  // oldest base backup's end to the newest archived segment, later than any nightly dump.
  for (const [name, bases] of basesOf) {
    const newest = bases[0]!;
    const oldest = bases.at(-1)!;
    const wal = await walStatus(repo, name);
    const until = wal.newest ? `the newest archived WAL (${wal.newest.file}, ${wal.newest.archivedAt})` : 'the end of the newest base backup (no WAL archived after it)';
    // The database's own URL (no password: recovery never connects to it) makes the config valid as written.
    const config = JSON.stringify({ repository: { url: repositoryUrl }, postgres: [{ name, url: withoutPassword(sourceOf(newest)), pitr: { enabled: true } }] });
    const m = newest.manifest!;
    items.push({
      component: 'postgres',
      name: `${name} (point in time)`,
      ...chosenFields(newest),
      format: `base backup (PostgreSQL ${(m.details as { serverVersion?: string }).serverVersion ?? '?'}), ${bases.length} in the repository, any moment from ${oldest.manifest!.finishedAt} to ${until}`,
      targetKind: TARGET_KIND['postgres-base']!,
      // `latest` picks the newest base backup that can reach the time; without --to, the end of the archive.
      command: `printf '%s\\n' ${shellQuote(config)} > dr-${name}.json && opsctl --config dr-${name}.json restore postgres latest --base --pgdata /PATH --to 'YYYY-MM-DD HH:MM:SS+00' --start --port 5433`,
      backups: bases.length,
      ...(wal.problems.length > 0 ? { problem: `WAL archive: ${wal.problems.slice(0, 2).join('; ')}` } : newest.verification?.ok ? {} : { problem: 'newest base backup not verified: opsctl verify postgres --base before trusting it' }),
    });
  }
  return { repository: repositoryUrl, items, targets };
}

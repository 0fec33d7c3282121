import { writeRecord, type BackupEntry } from '../backup/catalog.js';
import { DRILL, VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type Drill, type Verification } from '../backup/manifest.js';
import type { Log } from '../log.js';
import type { AmcheckResult } from './amcheck.js';
import type { Repository } from '../repository/repository.js';

export interface DrillDeps {
  now?: () => Date;
  env?: NodeJS.ProcessEnv;
  /** Where scratch directories go (default: the OS temp directory). */
  scratchRoot?: string;
  /**
   * Called with the scratch target once the restore is done, before the comparison. Tests
   * use it to make the restored data differ (a changed key, file or row), as a faulty
   * restore path would, and prove the drill notices.
   */
  afterRestore?: (scratch: string) => Promise<void>;
  /** SIGTERM / Ctrl-C: the drill stops its scratch server, removes its scratch data and records nothing. */
  signal?: AbortSignal | undefined;
  /** The restore's bytes of the payload's total: the same progress line as verify and restore. */
  onProgress?: ((bytes: number, total: number) => void) | undefined;
}

export interface DrillFields {
  scratch: string;
  restoreSeconds: number;
  checkSeconds?: number;
  compared: number;
  mismatches?: Drill['mismatches'];
  differences?: string[];
  schemaChanges?: string[];
  partitionChanges?: string[];
  digests?: Drill['digests'];
  amcheck?: AmcheckResult;
  /** Instead of "drill time minus the backup's start" (a PITR drill recovers to a moment just past). */
  rpoSeconds?: number;
  restorePoint?: Drill['restorePoint'];
  failure?: string;
}

/** The record of one drill: ok when nothing failed and nothing differed; RPO from the backup's start (its consistent point). */
export function drillRecord(entry: BackupEntry, at: Date, f: DrillFields): Drill {
  const consistentAt = entry.manifest ? new Date(entry.manifest.startedAt) : undefined;
  const mismatches = f.mismatches ?? [];
  const differences = f.differences ?? [];
  const failure =
    f.failure ??
    (differences.length > 0 ? `${differences.length} difference(s), first: ${differences[0]}` : mismatches.length > 0 ? `${mismatches.length} tables differ, e.g. ${mismatches[0]!.table}: expected ${mismatches[0]!.expected}, got ${mismatches[0]!.actual}` : undefined);
  return {
    formatVersion: 1,
    backupId: entry.id,
    component: entry.manifest?.component ?? 'postgres',
    name: entry.name,
    drilledAt: at.toISOString(),
    ok: failure === undefined,
    scratchDatabase: f.scratch,
    restoreSeconds: f.restoreSeconds,
    ...(f.checkSeconds !== undefined ? { checkSeconds: f.checkSeconds } : {}),
    ...(f.rpoSeconds !== undefined ? { rpoSeconds: f.rpoSeconds } : consistentAt ? { rpoSeconds: Math.max(0, (at.getTime() - consistentAt.getTime()) / 1000) } : {}),
    compared: f.compared,
    mismatches,
    ...(f.differences ? { differences } : {}),
    ...(f.amcheck ? { amcheck: { indexes: f.amcheck.indexes, tables: f.amcheck.tables, findings: f.amcheck.findings.length, ...(f.amcheck.skipped ? { skipped: f.amcheck.skipped } : {}) } } : {}),
    ...(f.schemaChanges ? { schemaChanges: f.schemaChanges } : {}),
    ...(f.partitionChanges ? { partitionChanges: f.partitionChanges } : {}),
    ...(f.digests ? { digests: f.digests } : {}),
    ...(f.restorePoint ? { restorePoint: f.restorePoint } : {}),
    ...(failure ? { failure } : {}),
  };
}

/** drill.json beside the manifest, and level 4 in verification.json when the backup was verified. */
export async function saveDrill(repo: Repository, entry: BackupEntry, drill: Drill, log: Log): Promise<void> {
  const component = drill.component;
  await writeRecord(repo, component, entry.name, entry.id, DRILL, drill);
  const verification = entry.verification;
  if (verification) {
    const readOk = levelsReadOk(verification);
    const detail = drill.failure ?? `${drill.compared} compared, restored in ${drill.restoreSeconds.toFixed(1)}s`;
    const levels = [...verification.levels.filter((l) => l.level !== 4), { level: 4, name: LEVEL_NAMES[3], ok: drill.ok, detail }];
    const { failure: _previous, ...rest } = verification;
    const updated: Verification = {
      ...rest,
      levels,
      levelPassed: readOk && drill.ok ? 4 : Math.min(verification.levelPassed, 3),
      ok: readOk && drill.ok,
      ...(!readOk ? { failure: verification.failure } : drill.ok ? {} : { failure: `level 4 (restore-drill): ${drill.failure}` }),
    };
    await writeRecord(repo, component, entry.name, entry.id, VERIFICATION, updated);
  }
  log[drill.ok ? 'info' : 'error'](`drill ${component}/${entry.name}/${entry.id}: ${drill.ok ? 'ok' : drill.failure}`, { restoreSeconds: drill.restoreSeconds });
}

/** Levels 1-3 passed: the backup reads as it should, whatever an earlier drill found (a drill may be repeated). */
export function levelsReadOk(v: Verification): boolean {
  const read = v.levels.filter((l) => l.level <= 3);
  return read.length === 3 && read.every((l) => l.ok);
}

import type { BackupEntry } from '../backup/catalog.js';
import { writeRecord } from '../backup/catalog.js';
import { DRILL, VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type Drill, type Verification } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import { withDatabase, withPostgres } from '../postgres/connect.js';
import { quoteIdent } from '../postgres/identifiers.js';
import { restorePostgres, type RestoreDeps } from './postgres-restore.js';

/** A name no application uses, unique per backup, within PostgreSQL's 63 bytes. */
export function scratchDatabaseName(name: string, backupId: string): string {
  return `ops_drill_${name}_${backupId.toLowerCase()}`.replace(/[^a-z0-9_]/g, '_').slice(0, 63);
}

/**
 * Level 4: restore into a scratch database, compare every table's row count with the
 * counts level 3 read from the archive, drop the scratch database, record the result
 * (drill.json, and level 4 in verification.json). Restore time is the measured RTO.
 */
export async function drillPostgres(entry: BackupEntry, serverUrl: string, deps: RestoreDeps & { now?: () => Date }): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const verification = entry.verification;
  const scratch = scratchDatabaseName(entry.name, entry.id);
  const scratchUrl = withDatabase(serverUrl, scratch);
  const adminUrl = withDatabase(serverUrl, 'postgres');
  const drop = () => withPostgres(adminUrl, (c) => c.query(`drop database if exists ${quoteIdent(scratch)} with (force)`));

  let drill: Drill;
  if (!verification?.ok || !verification.rowCounts) {
    drill = {
      formatVersion: 1,
      backupId: entry.id,
      component: 'postgres',
      name: entry.name,
      drilledAt: now().toISOString(),
      ok: false,
      scratchDatabase: scratch,
      restoreSeconds: 0,
      compared: 0,
      mismatches: [],
      failure: verification ? `verification failed: ${verification.failure}` : 'backup not verified yet: run opsctl verify first',
    };
  } else {
    await drop();
    try {
      const result = await restorePostgres(entry, { targetUrl: scratchUrl }, deps);
      drill = {
        formatVersion: 1,
        backupId: entry.id,
        component: 'postgres',
        name: entry.name,
        drilledAt: now().toISOString(),
        ok: result.mismatches.length === 0 && result.compared > 0,
        scratchDatabase: scratch,
        restoreSeconds: result.seconds,
        compared: result.compared,
        mismatches: result.mismatches,
        ...(result.mismatches.length > 0
          ? { failure: `${result.mismatches.length} tables differ, e.g. ${result.mismatches[0]?.table}: expected ${result.mismatches[0]?.expected}, got ${result.mismatches[0]?.actual}` }
          : result.compared === 0
            ? { failure: 'no table counts to compare' }
            : {}),
      };
    } catch (error) {
      drill = {
        formatVersion: 1,
        backupId: entry.id,
        component: 'postgres',
        name: entry.name,
        drilledAt: now().toISOString(),
        ok: false,
        scratchDatabase: scratch,
        restoreSeconds: 0,
        compared: 0,
        mismatches: [],
        failure: `restore failed: ${errorMessage(error)}`,
      };
    } finally {
      await drop();
    }
  }

  await writeRecord(deps.repo, 'postgres', entry.name, entry.id, DRILL, drill);
  if (verification) {
    const levels = [...verification.levels.filter((l) => l.level !== 4), { level: 4, name: LEVEL_NAMES[3], ok: drill.ok, detail: drill.failure ?? `${drill.compared} tables match, restored in ${drill.restoreSeconds.toFixed(1)}s` }];
    const updated: Verification = {
      ...verification,
      levels,
      levelPassed: verification.ok && drill.ok ? 4 : verification.levelPassed,
      ok: verification.ok && drill.ok,
      ...(drill.ok ? {} : { failure: `level 4 (restore-drill): ${drill.failure}` }),
    };
    await writeRecord(deps.repo, 'postgres', entry.name, entry.id, VERIFICATION, updated);
  }
  deps.log[drill.ok ? 'info' : 'error'](`drill postgres/${entry.name}/${entry.id}: ${drill.ok ? 'ok' : drill.failure}`, { restoreSeconds: drill.restoreSeconds });
  return drill;
}

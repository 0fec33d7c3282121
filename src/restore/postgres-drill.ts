import { randomBytes } from 'node:crypto';
import type { BackupEntry } from '../backup/catalog.js';
import type { Drill } from '../backup/manifest.js';
import { amcheck } from '../drill/amcheck.js';
import { drillRecord, levelsReadOk, saveDrill, type DrillDeps } from '../drill/record.js';
import { schemaDifferences, schemaStatements } from '../drill/schema-diff.js';
import { DrillInterruptedError } from '../drill/errors.js';
import { errorMessage } from '../errors.js';
import { withDatabase, withPostgres } from '../postgres/connect.js';
import { quoteIdent } from '../postgres/identifiers.js';
import { countRows, restorePostgres, type RestoreDeps } from './postgres-restore.js';
import { wasInterrupted } from '../process/interrupted.js';

/**
 * A name unique to this run (random part and backup id first, so 63 bytes never cut them;
 * the configured name, folded to [a-z0-9_], only tells a person whose it is).
 */
export function scratchDatabaseName(name: string, backupId: string, unique = randomBytes(4).toString('hex')): string {
  const id = backupId.toLowerCase().replace(/[^a-z0-9]/g, '');
  return `ops_drill_${unique}_${id}_${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/** Creates a scratch database that did not exist: the only one this run may drop. */
async function createScratch(adminUrl: string, name: string, backupId: string): Promise<string> {
  for (let attempt = 0; ; attempt += 1) {
    const scratch = scratchDatabaseName(name, backupId);
    try {
      await withPostgres(adminUrl, (c) => c.query(`create database ${quoteIdent(scratch)}`));
      return scratch;
    } catch (error) {
      // 42P04 duplicate_database: somebody's database by that name; never touched, another name taken.
      if ((error as { code?: string }).code !== '42P04' || attempt >= 4) throw error;
    }
  }
}

/**
 * Level 4: restore into a scratch database, compare every table's row count with the
 * counts level 3 read from the archive, compare the restored schema with the live one
 * (`liveUrl`'s database), drop the scratch database, record the result (drill.json, and
 * level 4 in verification.json). Restore time is the measured RTO. A schema that differs
 * does not fail the drill (the backup restored as it was taken): it is reported, so a
 * migration after the newest backup is seen.
 */
export async function drillPostgres(entry: BackupEntry, liveUrl: string, deps: RestoreDeps & DrillDeps): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const verification = entry.verification;
  const adminUrl = withDatabase(liveUrl, 'postgres');
  let scratch = '(not created)';
  // Only the database this run created is ever dropped.
  const drop = async () => {
    if (scratch !== '(not created)') await withPostgres(adminUrl, (c) => c.query(`drop database if exists ${quoteIdent(scratch)} with (force)`));
  };

  let drill: Drill;
  if (!verification || !levelsReadOk(verification) || !verification.rowCounts) {
    drill = drillRecord(entry, now(), {
      scratch,
      restoreSeconds: 0,
      compared: 0,
      failure: verification ? `verification failed: ${verification.failure}` : 'backup not verified yet: run opsctl verify first',
    });
  } else {
    try {
      scratch = await createScratch(adminUrl, entry.name, entry.id);
      const scratchUrl = withDatabase(liveUrl, scratch);
      const result = await restorePostgres(entry, { targetUrl: scratchUrl }, deps);
      await deps.afterRestore?.(scratchUrl);
      const checkStarted = Date.now();
      // The row counts were compared by the restore itself; now the table list and the schema.
      const recount = deps.afterRestore ? await countRows(scratchUrl, Object.keys(verification.rowCounts)) : undefined;
      const mismatches = recount ? Object.entries(verification.rowCounts).filter(([t, n]) => recount.get(t) !== n).map(([table, expected]) => ({ table, expected, actual: recount.get(table) ?? null })) : result.mismatches;
      const [live, restored] = await Promise.all([schemaStatements(liveUrl, deps.env), schemaStatements(scratchUrl, deps.env)]);
      const schema = schemaDifferences(live, restored);
      // The restored database's indexes and tables as amcheck reads them (a row count never reads an index).
      const checked = await withPostgres(scratchUrl, (c) => amcheck(c));
      drill = drillRecord(entry, now(), {
        scratch,
        restoreSeconds: result.seconds,
        checkSeconds: (Date.now() - checkStarted) / 1000,
        compared: result.compared,
        mismatches,
        schemaChanges: schema.changes,
        partitionChanges: schema.partitions,
        amcheck: checked,
        ...(checked.findings.length > 0 ? { differences: checked.findings } : {}),
        ...(result.compared === 0 ? { failure: 'no table counts to compare' } : {}),
      });
    } catch (error) {
      if (wasInterrupted(deps.signal, error)) {
        await drop();
        throw new DrillInterruptedError(`postgres/${entry.name}`, error);
      }
      drill = drillRecord(entry, now(), { scratch, restoreSeconds: 0, compared: 0, failure: `restore failed: ${errorMessage(error)}` });
    } finally {
      await drop();
    }
    if (deps.signal?.aborted) throw new DrillInterruptedError(`postgres/${entry.name}`);
  }
  await saveDrill(deps.repo, entry, drill, deps.log);
  return drill;
}

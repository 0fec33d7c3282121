import { execFileSync, spawnSync } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { freePort } from '../util/free-port.js';
import os from 'node:os';
import path from 'node:path';
import type { BackupEntry } from '../backup/catalog.js';
import type { Drill } from '../backup/manifest.js';
import type { BaseDetails } from '../backup/postgres-base.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { withPostgres } from '../postgres/connect.js';
import type { Repository } from '../repository/repository.js';
import { asOwner, pgServerTool, restorePostgresBase } from '../restore/postgres-pitr.js';
import { segmentOfLsn } from '../wal/names.js';
import { waitArchived } from '../wal/archive.js';
import { drillRecord } from './record.js';

/** Servers refuse to run as root: as root, the scratch cluster belongs to the `postgres` user. */
function scratchOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  } catch {
    return undefined;
  }
}

/**
 * The PITR drill: a restore point is created on the live database now, and the newest
 * base backup is restored to it on a scratch cluster that the drill starts, watches until
 * recovery stopped at that restore point and the server was promoted, queries (every
 * table counted), stops and removes. RTO: restore start to promoted server. RPO: the
 * restore point's age when recovered (seconds: only what the archive had not received).
 */
export async function drillPitr(entry: BackupEntry, liveUrl: string, name: string, deps: { repo: Repository; log: Log; restoreCommand: string; now?: () => Date; env?: NodeJS.ProcessEnv; scratchRoot?: string }): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const details = entry.manifest!.details as unknown as BaseDetails;
  const point = `ops-drill-${now().toISOString().replace(/[:.]/g, '')}`;
  const owner = scratchOwner();
  const parent = await mkdtemp(path.join(deps.scratchRoot ?? os.tmpdir(), 'ops-drill-pitr-'));
  const pgdata = path.join(parent, 'data');
  if (owner) await chown(parent, owner.uid, owner.gid);
  const started = Date.now();
  try {
    const lsn = await withPostgres(liveUrl, async (c) => {
      const { rows } = await c.query<{ lsn: string; tl: string }>(`select pg_create_restore_point($1)::text as lsn, (select timeline_id::text from pg_control_checkpoint()) as tl`, [point]);
      await c.query('select pg_switch_wal()');
      return { lsn: rows[0]!.lsn, timeline: Number(rows[0]!.tl) };
    });
    // The restore point is replayable once its segment is in the archive.
    const segment = segmentOfLsn(lsn.timeline, lsn.lsn, details.segmentBytes);
    const pointAt = Date.now();
    await waitArchived(deps.repo, name, segment, 120_000);
    // What a failure at the restore point would have lost: the time until its WAL was in the archive.
    const rpoSeconds = (Date.now() - pointAt) / 1000;
    const port = await freePort();
    // The live server's own timeline: a restored clone that kept archiving may have left a newer one in the archive.
    const spool = path.join(parent, 'wal-fetch');
    const restoreCommand = `${deps.restoreCommand} --spool ${JSON.stringify(spool)}`;
    const result = await restorePostgresBase(entry, { pgdata, target: { name: point }, restoreCommand, start: { port }, timeline: lsn.timeline, prefetch: { spool, name } }, deps);
    const restoreSeconds = (Date.now() - started) / 1000;
    const checkStarted = Date.now();
    const pg = await import('pg');
    const c = new pg.default.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    let compared = 0;
    try {
      const { rows } = await c.query<{ s: string; t: string }>(`select n.nspname as s, c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')`);
      for (const r of rows) {
        await c.query(`select count(*) from ${c.escapeIdentifier(r.s)}.${c.escapeIdentifier(r.t)}`);
        compared += 1;
      }
    } finally {
      await c.end();
    }
    const reached = (result.recovery ?? '').includes(`"${point}"`);
    return drillRecord(entry, now(), {
      scratch: `${pgdata} (port ${port}, restore point ${point})`,
      restoreSeconds,
      checkSeconds: (Date.now() - checkStarted) / 1000,
      compared,
      rpoSeconds,
      ...(reached ? {} : { failure: `recovery did not stop at the restore point ${point}: ${result.recovery}` }),
    });
  } catch (error) {
    return drillRecord(entry, now(), { scratch: pgdata, restoreSeconds: (Date.now() - started) / 1000, compared: 0, failure: `point-in-time restore failed: ${errorMessage(error)}` });
  } finally {
    const cmd = asOwner(owner ?? { uid: 0, gid: 0 }, [pgServerTool('pg_ctl', deps.env), '-D', pgdata, '-m', 'immediate', '-w', 'stop']);
    spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
    await rm(parent, { recursive: true, force: true });
  }
}

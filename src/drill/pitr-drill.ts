import { chown, mkdtemp, rm } from 'node:fs/promises';
import { freePort } from '../util/free-port.js';
import os from 'node:os';
import path from 'node:path';
import type { BackupEntry } from '../backup/catalog.js';
import type { Drill } from '../backup/manifest.js';
import type { BaseDetails } from '../backup/postgres-base.js';
import { amcheck, type AmcheckResult } from './amcheck.js';
import { DrillInterruptedError } from './errors.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { connectPostgres } from '../postgres/connect.js';
import type pg from 'pg';
import type { Repository } from '../repository/repository.js';
import { restorePostgresBase, scratchOwner, stopCluster } from '../restore/postgres-pitr.js';
import { segmentOfLsn } from '../wal/names.js';
import { waitArchived } from '../wal/archive.js';
import { drillRecord } from './record.js';
import { wasInterrupted } from '../process/interrupted.js';


/**
 * The PITR drill: a restore point is created on the live database now, and the newest
 * base backup is restored to it on a scratch cluster that the drill starts, watches until
 * recovery stopped at that restore point and the server was promoted, queries (every
 * table counted), stops and removes. RTO: restore start to promoted server. RPO: the
 * restore point's age when recovered (seconds: only what the archive had not received).
 */
export async function drillPitr(entry: BackupEntry, liveUrl: string, name: string, deps: { repo: Repository; log: Log; restoreCommand: string; spoolSource?: string; now?: () => Date; env?: NodeJS.ProcessEnv; scratchRoot?: string; signal?: AbortSignal | undefined; onProgress?: ((bytes: number, total: number) => void) | undefined }): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const details = entry.manifest!.details as unknown as BaseDetails;
  const point = `ops-drill-${now().toISOString().replace(/[:.]/g, '')}`;
  const owner = scratchOwner();
  const parent = await mkdtemp(path.join(deps.scratchRoot ?? os.tmpdir(), 'ops-drill-pitr-'));
  const pgdata = path.join(parent, 'data');
  if (owner) await chown(parent, owner.uid, owner.gid);
  const started = Date.now();
  let restorePoint: Drill['restorePoint'];
  try {
    // The source at the restore point: writers are held off for the moment it takes to make
    // the point and export a snapshot of exactly what it covers; the tables are read from
    // that snapshot afterwards while the application writes on.
    const live = await connectPostgres(liveUrl);
    const reader = await connectPostgres(liveUrl);
    let source: Map<string, TableDigest>;
    let lsn: { lsn: string; timeline: number };
    try {
      // Read committed: the snapshot exported below is taken then, after the locks (a repeatable
      // read transaction would export the one its first query took, before them).
      await live.query(`begin isolation level read committed; set local lock_timeout = '10s'`);
      const tables = await userTables(live);
      for (const t of tables) await live.query(`lock table ${t.sql} in share mode`);
      const { rows: snap } = await live.query<{ id: string }>('select pg_export_snapshot() as id');
      const { rows } = await live.query<{ lsn: string; tl: string }>(`select pg_create_restore_point($1)::text as lsn, (select timeline_id::text from pg_control_checkpoint()) as tl`, [point]);
      lsn = { lsn: rows[0]!.lsn, timeline: Number(rows[0]!.tl) };
      await reader.query(`begin isolation level repeatable read; set transaction snapshot '${snap[0]!.id}'`);
      await live.query('commit');
      await live.query('select pg_switch_wal()');
      source = await digestTables(reader, tables);
      await reader.query('commit');
    } finally {
      await live.end().catch(() => undefined);
      await reader.end().catch(() => undefined);
    }
    // The restore point is replayable once its segment is in the archive.
    const segment = segmentOfLsn(lsn.timeline, lsn.lsn, details.segmentBytes);
    const pointAt = Date.now();
    restorePoint = { name: point, lsn: lsn.lsn, timeline: lsn.timeline, at: new Date(pointAt).toISOString() };
    await waitArchived(deps.repo, name, segment, 120_000);
    // What a failure at the restore point would have lost: the time until its WAL was in the archive.
    const rpoSeconds = (Date.now() - pointAt) / 1000;
    const port = await freePort();
    // The live server's own timeline: a restored clone that kept archiving may have left a newer one in the archive.
    const spool = path.join(parent, 'wal-fetch');
    const restoreCommand = `${deps.restoreCommand} --spool ${JSON.stringify(spool)}`;
    const result = await restorePostgresBase(entry, { pgdata, target: { name: point }, restoreCommand, start: { port }, timeline: lsn.timeline, prefetch: { spool, name, ...(deps.spoolSource ? { source: deps.spoolSource } : {}) }, onProgress: deps.onProgress }, deps);
    const restoreSeconds = (Date.now() - started) / 1000;
    const checkStarted = Date.now();
    // The configured database on the restored cluster, over its own socket directory.
    const restored = await connectPostgres(scratchUrl(liveUrl, port));
    let mismatches: Drill['mismatches'] = [];
    const differences: string[] = [];
    let checked: AmcheckResult | undefined;
    try {
      const there = await digestTables(restored, await userTables(restored));
      for (const [table, want] of source) {
        const got = there.get(table);
        if (!got) differences.push(`${table}: missing from the restored cluster`);
        else if (got.rows !== want.rows) mismatches.push({ table, expected: want.rows, actual: got.rows });
        else if (got.hash !== want.hash) differences.push(`${table}: ${got.rows} rows as at the restore point, but other content (hash ${got.hash.slice(0, 12)}… vs ${want.hash.slice(0, 12)}…)`);
      }
      for (const table of there.keys()) if (!source.has(table)) differences.push(`${table}: in the restored cluster, not in the source at the restore point`);
      // The pages themselves: a base backup is a physical copy, and carries a damaged page as it is.
      checked = await amcheck(restored);
      differences.push(...checked.findings);
    } finally {
      await restored.end().catch(() => undefined);
    }
    deps.signal?.throwIfAborted();
    const compared = source.size;
    const reached = (result.recovery ?? '').includes(`"${point}"`);
    const failure = !reached
      ? `recovery did not stop at the restore point ${point}: ${result.recovery}`
      : compared === 0
        ? `the database ${databaseOf(liveUrl)} has no user table: the drill compared nothing`
        : undefined;
    return drillRecord(entry, now(), {
      scratch: `${pgdata} (port ${port}, restore point ${point})`,
      restoreSeconds,
      checkSeconds: (Date.now() - checkStarted) / 1000,
      compared,
      rpoSeconds,
      restorePoint,
      mismatches,
      differences,
      ...(checked ? { amcheck: checked } : {}),
      ...(failure ? { failure } : {}),
    });
  } catch (error) {
    if (wasInterrupted(deps.signal, error)) throw new DrillInterruptedError(`postgres/${name} (point in time)`, error);
    return drillRecord(entry, now(), { scratch: pgdata, restoreSeconds: (Date.now() - started) / 1000, compared: 0, restorePoint, failure: `point-in-time restore failed: ${errorMessage(error)}` });
  } finally {
    await stopCluster(pgdata, owner ?? { uid: 0, gid: 0 }, deps.env ?? process.env, 'immediate');
    await rm(parent, { recursive: true, force: true });
  }
}

interface TableDigest {
  rows: number;
  /** An order-free digest of the rows: the sum of each row's md5 (first 64 bits) as text. */
  hash: string;
}

/** Leaf tables with rows of their own (partitions, not their parents), as quoted names. */
async function userTables(c: pg.Client): Promise<{ name: string; sql: string }[]> {
  const { rows } = await c.query<{ s: string; t: string }>(
    `select n.nspname as s, c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%' order by 1, 2`,
  );
  return rows.map((r) => ({ name: `${r.s}.${r.t}`, sql: `${c.escapeIdentifier(r.s)}.${c.escapeIdentifier(r.t)}` }));
}

async function digestTables(c: pg.Client, tables: { name: string; sql: string }[]): Promise<Map<string, TableDigest>> {
  const out = new Map<string, TableDigest>();
  for (const t of tables) {
    const { rows } = await c.query<{ n: string; h: string }>(`select count(*)::text as n, coalesce(sum(('x' || substr(md5(x::text), 1, 16))::bit(64)::bigint::numeric), 0)::text as h from ${t.sql} x`);
    out.set(t.name, { rows: Number(rows[0]!.n), hash: rows[0]!.h });
  }
  return out;
}

function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** The live URL's database and user, on the scratch cluster's loopback port, without the live password. */
function scratchUrl(liveUrl: string, port: number): string {
  return `postgresql://postgres@127.0.0.1:${port}/${encodeURIComponent(databaseOf(liveUrl))}`;
}

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pgRestoreReads } from '../../src/pg-archive/versions.js';
import type { Verification } from '../../src/backup/manifest.js';
import { dumpFixture, runCollect } from '../helpers/archive-differential.js';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { pgMajorBindirs } from '../helpers/pg-majors.js';
import { adminQuery, createTestDatabase, dbUrl, dropDatabase, query, type TestDatabase } from '../helpers/postgres.js';

/** The host's PostgreSQL 15 (Debian bookworm) and the debootstrapped 17 and 18 (scripts/pg-majors.sh). */
const HOST_15 = '/usr/lib/postgresql/15/bin';

describe('pg_restore of one major reading pg_dump archives of another (real Debian builds 15, 17, 18)', () => {
  let db: TestDatabase;
  let work: string;
  let bins: Record<number, string>;
  const targets: string[] = [];
  before(async () => {
    assert.ok(existsSync(path.join(HOST_15, 'pg_restore')), `${HOST_15}/pg_restore: the machine's PostgreSQL 15 client`);
    bins = { 15: HOST_15, ...pgMajorBindirs() };
    db = await createTestDatabase('ops_test_ver');
    await query(db.name, 'create table public.kept (id int primary key, v text); insert into public.kept select g, md5(g::text) from generate_series(1, 37) g');
    work = await tempDir();
  });
  after(async () => {
    for (const t of targets) await dropDatabase(t);
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the table of which pg_restore reads which archive is what the real pg_restore does, each against each', async () => {
    const seen = new Set<boolean>();
    for (const dumpMajor of [15, 17, 18]) {
      const archive = await dumpFixture(db.url, 0, path.join(bins[dumpMajor]!, 'pg_dump'));
      for (const restoreMajor of [15, 17, 18]) {
        const r = await runCollect(path.join(bins[restoreMajor]!, 'pg_restore'), ['--list'], archive, 30_000);
        const expected = pgRestoreReads(restoreMajor, dumpMajor);
        assert.equal(r.code === 0, expected, `pg_restore ${restoreMajor} on pg_dump ${dumpMajor}'s archive: exit ${r.code} ${r.stderr}`);
        seen.add(expected!);
      }
    }
    assert.deepEqual([...seen].sort(), [false, true], 'both answers occurred');
  });

  it('through the bundle: a pg_dump 17 backup with pg_restore 15 fails verify level 2 and is refused by restore before the target exists, each saying what to run; with pg_restore 17 both pass', async () => {
    const repo = path.join(work, 'repo');
    const cfg = await writeConfig(work, postgresConfig('v', db.url, `file://${repo}`));
    const backup = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { OPS_PG_DUMP: path.join(bins[17]!, 'pg_dump') } });
    assert.equal(backup.code, 0, backup.stderr);
    const old = { OPS_PG_RESTORE: path.join(HOST_15, 'pg_restore') };
    const fix = { OPS_PG_RESTORE: path.join(bins[17]!, 'pg_restore') };
    const advice = /^pg_restore 15\.\d+ cannot read this backup: pg_dump 17\.\d+ wrote it \(archive version 1\.16\), which pg_restore reads from PostgreSQL 17 on\. Run with pg_restore 17 or newer: OPS_PG_RESTORE=<its path> \(Debian: \/usr\/lib\/postgresql\/17\/bin\/pg_restore, package postgresql-client-17\)/;

    const failed = await runCli(['--config', cfg, '--json', 'verify', 'postgres'], { env: old });
    assert.equal(failed.code, 2, failed.stdout + failed.stderr);
    const v = (JSON.parse(failed.stdout) as { results: { verification: Verification }[] }).results[0]!.verification;
    assert.equal(v.levelPassed, 1);
    assert.match(v.levels[1]!.detail ?? '', advice);
    // pg_restore's own words are kept beside ours.
    assert.match(v.levels[1]!.detail ?? '', /\(pg_restore --list: .*unsupported version \(1\.16\) in file header\)$/);

    const target = `${db.name}_r`;
    targets.push(target);
    const refused = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--target', dbUrl(target)], { env: old });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    const error = (JSON.parse(refused.stdout) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'PG_RESTORE_TOO_OLD');
    assert.match(error.message, advice);
    assert.equal((await adminQuery('select 1 from pg_database where datname = $1', [target])).rowCount, 0, 'the target was not created');

    const verified = await runCli(['--config', cfg, '--json', 'verify', 'postgres'], { env: fix });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const restored = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', dbUrl(target)], { env: fix });
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.match(restored.stdout, /1 tables compared with the verification's row counts, 0 differ/);
    assert.equal((await query(target, 'select count(*)::int as n from public.kept')).rows[0].n, 37);
  });
});

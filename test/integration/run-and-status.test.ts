import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { monthsFrom, seedSchemaSql } from '../../src/demo/sample-database.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';
import { cloneBackup, flipByte } from '../helpers/tamper.js';

type Status = { state: string; backups: { component: string; name: string; state: string; newest: { id: string } | null }[]; partitions: { database: string; state: string; tables: { table: string; coverage: number; oldest: string | null }[] }[] };

describe('opsctl run <job> and the status it leaves (real PostgreSQL, file repository)', () => {
  let db: TestDatabase;
  let dir: string;
  let repo: string;
  let cfg: string;
  const config = (alerts: Record<string, number> = {}) => ({
    repository: { url: `file://${repo}` },
    postgres: [{ name: 'callcenter', url: db.url, partitions: { tables: [{ table: 'public.calls' }, { table: 'public.call_turns', retention: 12 }] } }],
    alerts,
  });
  const run = async (...args: string[]) => {
    const r = await runCli(['--config', cfg, '--json', ...args]);
    return { code: r.code, json: JSON.parse(r.stdout || '{}') as Record<string, unknown>, stderr: r.stderr };
  };
  const status = async () => {
    const r = await run('status');
    return { code: r.code, report: r.json as unknown as Status };
  };

  before(async () => {
    [db, dir] = await Promise.all([createTestDatabase(), tempDir()]);
    // Partitions up to the current month, as a live system has them (no gap before "now").
    await query(db.name, seedSchemaSql('public', monthsFrom('2026_01', new Date())));
    await query(db.name, "insert into calls (id, started_at, caller_number, status) select g, now() - g * interval '1 minute', '+100000' || g, 'done' from generate_series(1, 500) g");
    repo = path.join(dir, 'repo');
    cfg = await writeConfig(dir, config());
  });
  after(async () => Promise.all([db.drop(), rm(dir, { recursive: true, force: true })]));

  it('nothing ran yet: DOWN (exit 2): no backup, no partition run', async () => {
    const { code, report } = await status();
    assert.equal(code, 2);
    assert.equal(report.state, 'DOWN');
    assert.equal(report.backups[0]!.state, 'missing');
    assert.equal(report.partitions[0]!.state, 'coverage-low', 'only the current month exists: 0 periods ahead');
  });

  it('run backup-postgres, partitions: DEGRADED (exit 1) while the newest backup is unverified', async () => {
    const backup = await run('run', 'backup-postgres');
    assert.equal(backup.code, 0, backup.stderr);
    const parts = await run('run', 'partitions');
    assert.equal(parts.code, 0, parts.stderr);
    const { code, report } = await status();
    assert.equal(code, 1);
    assert.deepEqual([report.backups[0]!.state, report.partitions[0]!.state], ['unverified', 'ok']);
    assert.deepEqual(report.partitions[0]!.tables.map((t) => [t.table, t.coverage, t.oldest]), [
      ['public.calls', 3, 'calls_2026_01'],
      ['public.call_turns', 3, 'call_turns_2026_01'],
    ]);
  });

  it('run verify: OK (exit 0)', async () => {
    const v = await run('run', 'verify');
    assert.equal(v.code, 0, v.stderr);
    const { code, report } = await status();
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.state, 'OK');
  });

  it('a newest backup that fails verification: run verify exits 2, status DEGRADED naming it', async () => {
    const { report } = await status();
    const good = report.backups[0]!.newest!.id;
    await cloneBackup(repo, 'callcenter', good, '29990101T000000Z', { payload: flipByte(0.5) });
    const v = await run('run', 'verify');
    assert.equal(v.code, 2, JSON.stringify(v.json));
    const after = await status();
    assert.equal(after.code, 1);
    assert.equal(after.report.backups[0]!.state, 'verify-failed');
    await rm(path.join(repo, 'postgres', 'callcenter', '29990101T000000Z'), { recursive: true });
  });

  it('a backup older than its threshold: stale, DEGRADED (exit 1)', async () => {
    cfg = await writeConfig(dir, config({ postgresBackupStaleHours: 0.0001 }));
    await new Promise((r) => setTimeout(r, 500));
    const { code, report } = await status();
    assert.equal(code, 1);
    assert.equal(report.backups[0]!.state, 'stale');
    cfg = await writeConfig(dir, config());
  });

  it('run prune and run drill go through the same commands as their schedules', async () => {
    const prune = await run('run', 'prune');
    assert.equal(prune.code, 0, prune.stderr);
    const drill = await run('run', 'drill');
    assert.equal(drill.code, 0, JSON.stringify(drill.json));
    assert.match(JSON.stringify(drill.json), /"ok":true/);
  });
});

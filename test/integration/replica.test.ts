import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { monthsFrom, seedSchemaSql } from '../../src/demo/sample-database.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { queryUrl } from '../helpers/postgres.js';

const sql = queryUrl;

describe('a real streaming replica (own primary and standby servers)', () => {
  let primary: TestPostgresServer;
  let standby: TestPostgresServer;
  let dir: string;
  const config = (url: string) => ({
    repository: { url: `file://${path.join(dir, 'repo')}` },
    postgres: [{ name: 'callcenter', url, partitions: { tables: [{ table: 'public.calls' }, { table: 'public.call_turns', retention: 12 }] } }],
  });

  before(async () => {
    dir = await tempDir();
    primary = await startPostgresServer();
    await sql(primary.url, seedSchemaSql('public', monthsFrom('2026_01', new Date())));
    standby = await startPostgresServer({ standbyOf: primary });
    for (let i = 0; i < 100; i += 1) {
      if ((await sql(primary.url, "select count(*)::int as n from pg_stat_replication where state = 'streaming'")).rows[0].n > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await standby?.remove();
    await primary?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('partition maintenance refuses the standby (exit 2, says to use the primary) and changes nothing', async () => {
    const cfg = await writeConfig(dir, config(standby.url));
    const before = (await sql(standby.url, "select count(*)::int as n from pg_inherits")).rows[0].n;
    const r = await runCli(['--config', cfg, 'partitions', 'ensure']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /callcenter is a read replica \(pg_is_in_recovery\): run partition maintenance against the primary/);
    assert.equal((await sql(standby.url, 'select count(*)::int as n from pg_inherits')).rows[0].n, before);
  });

  it('status shows the replica and its replay lag on the primary, and the standby as such', async () => {
    const onPrimary = await runCli(['--config', await writeConfig(dir, config(primary.url)), '--json', 'status']);
    const p = JSON.parse(onPrimary.stdout).services.postgres[0];
    assert.equal(p.inRecovery, false);
    assert.equal(p.replicas.length, 1);
    assert.equal(p.replicas[0].state, 'streaming');
    assert.ok(p.replicas[0].replayLagSeconds === null || p.replicas[0].replayLagSeconds >= 0);
    const onStandby = await runCli(['--config', await writeConfig(dir, config(standby.url)), '--json', 'status']);
    assert.equal(JSON.parse(onStandby.stdout).services.postgres[0].inRecovery, true);
  });

  it('a backup from the standby works (pg_dump on a replica), and so does its verification', async () => {
    const cfg = await writeConfig(dir, config(standby.url));
    const b = await runCli(['--config', cfg, 'backup', 'postgres']);
    assert.equal(b.code, 0, b.stderr);
    const v = await runCli(['--config', cfg, 'verify', 'postgres']);
    assert.equal(v.code, 0, v.stderr);
  });
});

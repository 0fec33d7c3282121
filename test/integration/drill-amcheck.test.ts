import assert from 'node:assert/strict';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { sqlOn as sql, type TestPostgresServer } from '../helpers/pg-server.js';
import { startArchivingCluster, waitArchived } from '../helpers/pitr.js';

interface DrillJson {
  ok: boolean;
  failure?: string;
  differences?: string[];
  amcheck?: { indexes: number; tables: number; findings: number; skipped?: string };
}

/**
 * A drill must prove the data, not only that a restore ran and rows can be counted: an
 * index page damaged on the live disk (its clean copy still in the live server's memory, so
 * the live server and a row-by-row comparison see nothing) travels in the base backup, and
 * only amcheck on the restored cluster finds it.
 */
describe('drills check the restored data with amcheck (B-tree indexes with heapallindexed, verify_heapam on tables)', () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;

  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-drill-amcheck-'));
    await sql(server.port, `create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 20000) g; create index t_v on t (v)`);
  });
  after(async () => {
    await server?.remove();
    await rm(work, { recursive: true, force: true });
  });

  const drill = async () => {
    const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr']);
    return { code: r.code, out: r.stdout + r.stderr, d: (JSON.parse(r.stdout) as { results: DrillJson[] }).results[0]! };
  };

  it('an intact cluster: every index and table read by amcheck, the drill passes', async () => {
    const b = await runCli(['--config', cfg, 'backup', 'postgres', '--base']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    await waitArchived(server.port);
    const { code, out, d } = await drill();
    assert.equal(code, 0, out);
    assert.equal(d.amcheck?.indexes, 2, 't_pkey and t_v');
    assert.equal(d.amcheck?.tables, 1);
    assert.equal(d.amcheck?.findings, 0);
  });

  it('an index leaf page damaged on disk before the base backup: the tables compare equal, amcheck fails the drill naming the index', async () => {
    await sql(server.port, 'checkpoint');
    const [{ f }] = (await sql<{ f: string }>(server.port, `select pg_relation_filepath('t_v') as f`)) as [{ f: string }];
    const file = await open(path.join(server.dir, 'data', f), 'r+');
    try {
      // Block 1 (after the metapage): overwrite index tuples in the middle of the page.
      await file.write(Buffer.alloc(512, 0x41), 0, 512, 8192 + 3000);
    } finally {
      await file.close();
    }
    const b = await runCli(['--config', cfg, 'backup', 'postgres', '--base']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    await waitArchived(server.port);
    const { code, out, d } = await drill();
    assert.equal(code, 2, out);
    assert.equal(d.ok, false);
    assert.ok((d.amcheck?.findings ?? 0) > 0, out);
    assert.match(d.failure ?? '', /amcheck: index public\.t_v: /);
    assert.ok(!(d.differences ?? []).some((x) => /^public\.t:/.test(x)), 'the row comparison itself saw nothing: only amcheck did');
  });
});

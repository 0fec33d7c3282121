import assert from 'node:assert/strict';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { sqlOn as sql, type TestPostgresServer } from '../helpers/pg-server.js';
import { emptyDataDir, startArchivingCluster, stopCluster, waitArchived } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

/**
 * A base backup carries the live data directory's configuration. The files are changed
 * under the running live server (which reads them only at start or reload), so the base
 * backup holds a setup that would not start anywhere else, as production's do: SSL files
 * the restore host lacks, a preload library it does not have, 64 GB of shared buffers,
 * huge pages, a logging collector, a data_directory pointing at the live cluster, and an
 * hba that asks for passwords; or, as on Debian, no postgresql.conf and no pg_hba.conf.
 */
describe('base backups of a real cluster as production has it: restored and scratch clusters start whatever setup it carries; its upload is sized by the whole cluster', () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  const clusters: string[] = [];

  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-pitr-start-'));
    await sql(server.port, 'create table t (id int primary key)');
    await sql(server.port, 'insert into t select generate_series(1, 100)');
  });
  after(async () => {
    for (const c of clusters) stopCluster(c);
    await server?.remove();
    await rm(work, { recursive: true, force: true });
  });

  const restore = async (label: string) => {
    const pgdata = await emptyDataDir(work, label);
    const port = await freePort();
    clusters.push(pgdata);
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
    return { r, port };
  };
  const base = async () => {
    const b = await runCli(['--config', cfg, 'backup', 'postgres', '--base']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    await waitArchived(server.port);
  };

  it('a live configuration that cannot start here (SSL files, a missing preload library, 64 GB shared buffers, huge pages, a data_directory pointing at the live cluster, passwords in pg_hba.conf): restored and promoted, the live cluster untouched', async () => {
    const live = path.join(server.dir, 'data');
    await appendFile(
      path.join(live, 'postgresql.conf'),
      [
        `ssl = on`,
        `ssl_cert_file = '/nonexistent/server.crt'`,
        `ssl_key_file = '/nonexistent/server.key'`,
        `shared_preload_libraries = 'no_such_library'`,
        `shared_buffers = '64GB'`,
        `huge_pages = on`,
        `logging_collector = on`,
        `data_directory = '${live}'`,
        '',
      ].join('\n'),
    );
    await writeFile(path.join(live, 'pg_hba.conf'), 'local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n');
    await base();
    const { r, port } = await restore('hostile-setup');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await sql<{ n: string }>(port, 'select count(*)::text as n from t'))[0]!.n, '100');
    const [row] = await sql<{ dir: string; ssl: string }>(port, `select current_setting('data_directory') as dir, current_setting('ssl') as ssl`);
    assert.equal(row!.dir, path.join(work, 'hostile-setup'), 'its own data directory, never the live one');
    assert.equal(row!.ssl, 'off');
    assert.equal((await sql<{ n: string }>(server.port, 'select count(*)::text as n from t'))[0]!.n, '100', 'the live cluster still answers');
  });

  it('no postgresql.conf and no pg_hba.conf in the data directory (Debian keeps them in /etc/postgresql): restored and promoted; the PITR drill passes too', async () => {
    const live = path.join(server.dir, 'data');
    await rm(path.join(live, 'postgresql.conf'));
    await rm(path.join(live, 'pg_hba.conf'));
    await base();
    const { r, port } = await restore('debian-layout');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await sql<{ n: string }>(port, 'select count(*)::text as n from t'))[0]!.n, '100');
    const d = await runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
  });

  it('a base backup sizes its upload parts from the whole cluster, not the configured database (parts from one small database failed past 58 GiB)', async () => {
    await sql(server.port, 'create database big');
    // 40 MB that does not compress, in a database the configuration does not name.
    const c = `postgresql://postgres@127.0.0.1:${server.port}/big`;
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: c });
    await client.connect();
    await client.query(`create table blob as select g, decode(string_agg(md5(random()::text || g::text || i::text), ''), 'hex') as b from generate_series(1, 40) g, generate_series(1, 65536) i group by g`);
    const { rows } = await client.query<{ n: string }>(`select pg_database_size('big')::text as n`);
    await client.end();
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const id = (JSON.parse(b.stdout) as { results: { id: string }[] }).results[0]!.id;
    const m = JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', id, 'manifest.json'), 'utf8')) as { details: { clusterBytes: number }; payload: { bytes: number } };
    assert.ok(m.details.clusterBytes >= Number(rows[0]!.n), `cluster ${m.details.clusterBytes} bytes, big alone ${rows[0]!.n}`);
    assert.ok(m.details.clusterBytes * 1.1 >= m.payload.bytes, 'the hint bounds what was stored');
    const { partSizeFor } = await import('../../src/repository/s3-repository.js');
    const GiB = 1024 ** 3;
    // What the hint means for S3 at production sizes: within 10,000 parts, each at most 5 GiB.
    for (const bytes of [100 * GiB, 5 * 1024 * GiB]) {
      const part = partSizeFor(6, Math.ceil(bytes * 1.1));
      assert.ok(Math.ceil(bytes / part) <= 10_000 && part <= 5 * GiB, `${bytes / GiB} GiB: ${part / 1024 ** 2} MiB parts`);
    }
    assert.ok(Math.ceil((100 * GiB) / partSizeFor(6, 300 * 1024 ** 2)) > 10_000, 'a one-database hint (300 MiB) would have failed at 100 GiB');
  });
});

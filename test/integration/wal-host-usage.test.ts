import assert from 'node:assert/strict';
import { chmod, chown, mkdir, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { postgresGid, postgresUid } from '../helpers/pitr.js';
import { freePort, startPrometheus, type LocalPrometheus } from '../helpers/prometheus.js';

const SEGMENT = 16 * 1024 * 1024;

/**
 * pg_wal never fills silently: a real cluster whose archive_command (`opsctl wal push`)
 * fails while it writes (its repository is not writable by the postgres user), reporting
 * to a real Prometheus through remote write. Every failed call reports the backlog, the
 * size of pg_wal and the free space of its disk; once the repository is writable the
 * backlog drains and the next report says so.
 */
describe('wal push reports pg_wal backlog, size and free space with every call, failed ones included (real cluster, real Prometheus)', () => {
  let prom: LocalPrometheus;
  let server: TestPostgresServer;
  let work: string;
  let repo: string;
  before(async () => {
    prom = await startPrometheus();
    work = await tempDir('ops-wal-usage-');
    await chmod(work, 0o755);
    repo = path.join(work, 'repo');
    await mkdir(repo, { mode: 0o755 }); // root's: the postgres user cannot write here, so every push fails
    const port = await freePort();
    const cfg = await writeConfig(work, {
      repository: { url: `file://${repo}` },
      postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: true } }],
      metrics: { prometheus: { url: prom.writeUrl, timeoutMs: 2000 } },
      alerts: { walBacklogMaxBytes: 2 * SEGMENT },
    });
    await chmod(cfg, 0o644);
    const spool = path.join(work, 'spool');
    await mkdir(spool, { mode: 0o700 });
    await chown(spool, postgresUid, postgresGid);
    server = await startPostgresServer({ port, settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `${process.execPath} ${OPSCTL} --config ${cfg} wal push %p --name main --spool ${spool}` } });
  });
  after(async () => {
    await server?.remove();
    await prom?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const value = async (metric: string): Promise<number | undefined> => {
    const [r] = await prom.query(`${metric}{name="main"}`);
    return r ? Number(r.value[1]) : undefined;
  };
  const ready = async () => Number((await sqlOn<{ n: string }>(server.port, `select count(*)::text as n from pg_ls_archive_statusdir() where name like '%.ready'`))[0]!.n);
  const writeSegments = async (n: number) => {
    await sqlOn(server.port, 'create table if not exists t (i int)');
    for (let i = 0; i < n; i += 1) await sqlOn(server.port, `insert into t values (${i}); select pg_switch_wal()`);
  };
  const until = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  it('while archive_command fails: the backlog grows in Prometheus as in pg_wal, with pg_wal size, free space and the configured limit', async () => {
    await writeSegments(4);
    // PostgreSQL retries a failing file three times, 1 s apart, then once a minute (or at the next switch).
    const reported = await until('a backlog of 3 or more reported', async () => {
      const v = await value('wal_ready_files');
      return v !== undefined && v >= 3 ? v : undefined;
    });
    const failures = Number((await sqlOn<{ n: string }>(server.port, 'select failed_count::text as n from pg_stat_archiver'))[0]!.n);
    assert.ok(failures > 0, 'archive_command failed');
    const inPgWal = await ready();
    assert.ok(reported <= inPgWal, `reported ${reported} .ready files, pg_wal holds ${inPgWal}`);
    const readyBytes = (await value('wal_ready_bytes'))!;
    // Each .ready is a full segment (history files aside: none on timeline 1).
    assert.equal(readyBytes, reported * SEGMENT);
    assert.equal(await value('wal_ready_bytes_limit'), 2 * SEGMENT);
    const walBytes = (await value('pg_wal_bytes'))!;
    const [{ bytes }] = (await sqlOn<{ bytes: string }>(server.port, 'select sum(size)::text as bytes from pg_ls_waldir()')) as [{ bytes: string }];
    assert.ok(walBytes >= readyBytes, `pg_wal ${walBytes} holds at least the backlog ${readyBytes}`);
    assert.ok(Math.abs(walBytes - Number(bytes)) <= 8 * SEGMENT, `reported pg_wal ${walBytes}, pg_ls_waldir ${bytes}`);
    const fs = await statfs(server.dir);
    const free = Number(fs.bavail * fs.bsize);
    const reportedFree = (await value('pg_wal_fs_free_bytes'))!;
    assert.ok(Math.abs(reportedFree - free) < 0.05 * Number(fs.blocks * fs.bsize), `free ${reportedFree} reported, ${free} now`);
    assert.equal(await value('pg_wal_fs_size_bytes'), Number(fs.blocks * fs.bsize));
  });

  it('once the repository is writable the backlog drains, and the next push reports its own file alone', async () => {
    await chown(repo, postgresUid, postgresGid);
    await until('the backlog archived', async () => ((await ready()) === 0 ? true : undefined));
    await writeSegments(1);
    await until('a backlog of 1 reported', async () => ((await value('wal_ready_files')) === 1 ? true : undefined));
    assert.equal(await value('wal_ready_bytes'), SEGMENT);
  });
});

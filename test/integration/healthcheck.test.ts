import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('opsctl healthcheck (own PostgreSQL and Redis servers, stopped for real)', () => {
  let pg: TestPostgresServer;
  let redis: TestRedis;
  let dir: string;
  let cfg: string;

  before(async () => {
    [pg, redis, dir] = await Promise.all([startPostgresServer(), startRedis(), tempDir()]);
    await mkdir(path.join(dir, 'repo'));
    cfg = await writeConfig(dir, {
      repository: { url: `file://${path.join(dir, 'repo')}` },
      postgres: [{ name: 'callcenter', url: pg.url }],
      redis: [{ name: 'sessions', url: redis.url, mode: 'logical' }],
    });
  });
  after(async () => {
    await Promise.all([pg.remove(), redis.stop().catch(() => undefined), rm(dir, { recursive: true, force: true })]);
  });

  const check = async () => {
    const r = await runCli(['--config', cfg, '--json', 'healthcheck', '--timeout', '2000']);
    return { code: r.code, report: JSON.parse(r.stdout) as { state: string; checks: { check: string; ok: boolean; detail: string }[] }, stderr: r.stderr };
  };

  it('all reachable: OK, exit 0, with the server version', async () => {
    const { code, report, stderr } = await check();
    assert.equal(code, 0, stderr);
    assert.equal(report.state, 'OK');
    assert.deepEqual(report.checks.map((c) => [c.check, c.ok]), [['repository', true], ['postgres', true], ['redis', true]]);
    assert.match(report.checks[1]!.detail, /^PostgreSQL \d+/);
  });

  it('PostgreSQL stopped: DOWN, exit 2, naming the database; started again: OK', async () => {
    pg.stop();
    const { code, report } = await check();
    assert.equal(code, 2);
    assert.equal(report.state, 'DOWN');
    const failed = report.checks.find((c) => !c.ok)!;
    assert.equal(failed.check, 'postgres');
    assert.match(failed.detail, /ECONNREFUSED/);
    pg.start();
    assert.equal((await check()).code, 0);
  });

  it('Redis stopped: DEGRADED, exit 1; a wrong password says so', async () => {
    const protectedRedis = await startRedis(['--requirepass', 's3cret']);
    try {
      const wrong = await writeConfig(dir, {
        repository: { url: `file://${path.join(dir, 'repo')}` },
        postgres: [{ name: 'callcenter', url: pg.url }],
        redis: [{ name: 'sessions', url: protectedRedis.url, mode: 'logical' }],
      });
      const r = await runCli(['--config', wrong, '--json', 'healthcheck'], { env: { REDISCLI_AUTH: 'wrong' } });
      assert.equal(r.code, 1);
      assert.match(JSON.parse(r.stdout).checks[2].detail, /Redis refused: (WRONGPASS|ERR invalid password)/);
      const right = await runCli(['--config', wrong, '--json', 'healthcheck'], { env: { REDISCLI_AUTH: 's3cret' } });
      assert.equal(right.code, 0, right.stdout);
    } finally {
      await protectedRedis.stop();
    }
    await redis.stop();
    const { code, report } = await check();
    assert.equal(code, 1);
    assert.equal(report.state, 'DEGRADED');
    assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.check), ['redis']);
  });

  it('a missing file:// repository is DOWN with its path, and the check does not create it', async () => {
    const missing = path.join(dir, 'not-mounted', 'repo');
    const cfg = await writeConfig(dir, { repository: { url: `file://${missing}` }, postgres: [{ name: 'callcenter', url: pg.url }] });
    const r = await runCli(['--config', cfg, '--json', 'healthcheck']);
    assert.equal(r.code, 2, r.stdout);
    const check = JSON.parse(r.stdout).checks[0];
    assert.equal(check.ok, false);
    assert.match(check.detail, new RegExp(`repository directory ${missing} does not exist \\(is its volume mounted\\?\\)`));
    assert.equal(existsSync(path.join(dir, 'not-mounted')), false, 'nothing was created');
  });

  it('repository unusable: DOWN, exit 2', async () => {
    const bad = await writeConfig(dir, { repository: { url: 'file:///proc/ops-no-such-dir/repo' }, postgres: [{ name: 'callcenter', url: pg.url }] });
    const r = await runCli(['--config', bad, '--json', 'healthcheck']);
    assert.equal(r.code, 2);
    assert.equal(JSON.parse(r.stdout).checks[0].ok, false);
  });
});

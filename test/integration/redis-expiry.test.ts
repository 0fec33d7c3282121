import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// With PTTL the client turned "time left" into a deadline with its own clock: every
// restored expiry came back late by up to 0.1 s. Redis 7 answers PEXPIRETIME, the
// deadline itself, and RESTORE ... ABSTTL puts back exactly that.
describe('Redis logical backups keep absolute expiries exactly (Redis 7+: PEXPIRETIME)', () => {
  const servers: TestRedis[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('every restored key has the very millisecond deadline it had, in both dump paths', async () => {
    for (const scripts of [true, false]) {
      const source = await startRedis(scripts ? [] : ['--rename-command', 'EVALSHA', '""']);
      const target = await startRedis();
      servers.push(source, target);
      const c = source.client(0);
      const base = Date.now() + 3_600_000;
      const deadlines = new Map<string, number>();
      for (let i = 0; i < 300; i += 1) {
        const at = base + i * 7 + (i % 13);
        deadlines.set(`k${i}`, at);
        await c.set(`k${i}`, `v${i}`);
        await c.pexpireat(`k${i}`, at);
      }
      await c.set('forever', 'x');
      const dir = await tempDir('ops-expiry-');
      try {
        const cfg = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'r', url: source.url, mode: 'logical' }] });
        assert.equal((await runCli(['--config', cfg, 'backup', 'redis'])).code, 0);
        const r = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--target', target.url]);
        assert.equal(r.code, 0, r.stderr);
        const t = target.client(0);
        for (const [key, at] of deadlines) assert.equal(Number(await t.call('PEXPIRETIME', key)), at, `${key} (${scripts ? 'script' : 'pipelined'} path)`);
        assert.equal(Number(await t.call('PEXPIRETIME', 'forever')), -1);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});

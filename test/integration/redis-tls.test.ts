import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { filesUnder } from '../helpers/repo.js';
import { fillAllTypes, snapshot, startTlsRedis, type TlsRedis } from '../helpers/redis.js';

describe('Redis over TLS (rediss://), as managed services with in-transit encryption', () => {
  let source: TlsRedis;
  let target: TlsRedis;
  let work: string;
  let cfg: string;
  let trust: Record<string, string>;
  before(async () => {
    source = await startTlsRedis();
    target = await startTlsRedis();
    await fillAllTypes(source.client(0));
    await source.client(2).set('db2', 'two');
    work = await tempDir();
    cfg = await writeConfig(work, {
      repository: { url: `file://${work}/repo` },
      redis: [
        { name: 'tls-rdb', url: source.url, mode: 'rdb' },
        { name: 'tls-logical', url: source.url, mode: 'logical' },
      ],
    });
    // Both test servers' certificates, as an operator adds a private CA.
    const bundle = `${work}/ca.pem`;
    await writeFile(bundle, Buffer.concat([await readFile(source.caFile), await readFile(target.caFile)]));
    trust = { NODE_EXTRA_CA_CERTS: bundle };
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('both modes back up and verify over TLS; logical restores into another TLS server', async () => {
    const b = await runCli(['--config', cfg, 'backup', 'redis'], { env: trust });
    assert.equal(b.code, 0, b.stderr);
    const v = await runCli(['--config', cfg, 'verify', 'redis', 'latest', '--name', 'tls-rdb'], { env: trust });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const r = await runCli(['--config', cfg, '--json', 'restore', 'redis', 'latest', '--name', 'tls-logical', '--target', target.url], { env: trust });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(target.client(0)), await snapshot(source.client(0)));
    assert.deepEqual(await snapshot(target.client(2)), await snapshot(source.client(2)));
  });

  it('a certificate nobody vouches for: refused with the TLS reason, nothing written', async () => {
    const dir = await tempDir();
    try {
      const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'untrusted', url: source.url, mode: 'logical' }] });
      const r = await runCli(['--config', c, 'backup', 'redis'], { env: { NODE_EXTRA_CA_CERTS: undefined } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /cannot connect to rediss:\/\/localhost:\d+.*self[- ]signed certificate/);
      assert.deepEqual(await filesUnder(`${dir}/repo`), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

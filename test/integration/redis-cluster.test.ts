import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { filesUnder } from '../helpers/repo.js';
import { fillAllTypes, snapshot, startCluster, startRedis, type TestCluster, type TestRedis } from '../helpers/redis.js';

interface BackupJson {
  results: { ok: boolean; id: string; error?: string }[];
}

describe('Redis Cluster, logical mode', () => {
  let source: TestCluster;
  let work: string;
  let cfg: string;
  const others: { stop(): Promise<void> }[] = [];
  before(async () => {
    source = await startCluster(3);
    const c = source.client();
    await fillAllTypes(c);
    // Keys on every primary, some with TTLs, some sharing a slot through a hash tag.
    await Promise.all(Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? c.set(`user:${i}`, `value-${i}`, 'PX', 3_600_000) : c.set(`user:${i}`, `value-${i}`))));
    await Promise.all(Array.from({ length: 50 }, (_, i) => c.hset(`{tenant:7}:h${i}`, { n: String(i) })));
    work = await tempDir();
    cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, redis: [{ name: 'cluster', url: `redis://127.0.0.1:${source.nodes[1]!.port}`, mode: 'logical' }] });
  });
  after(async () => {
    for (const o of others) await o.stop();
    await source?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('dumps every primary from one seed node, verifies, and restores into another cluster and into a single server', async () => {
    const expected = await source.snapshot();
    assert.equal(Object.keys(expected).length, 10 + 3000 + 50);
    const b = await runCli(['--config', cfg, '--json', 'backup', 'redis']);
    assert.equal(b.code, 0, b.stderr);
    const manifests = (await filesUnder(`${work}/repo`)).filter((f) => f.endsWith('manifest.json'));
    const manifest = JSON.parse(await readFile(`${work}/repo/${manifests[0]}`, 'utf8')) as { details: { keys: number; nodes: string[]; dbs: number[] } };
    assert.equal(manifest.details.keys, 3060);
    assert.deepEqual([...manifest.details.nodes].sort(), source.nodes.map((n) => `127.0.0.1:${n.port}`).sort(), 'every primary dumped');
    assert.deepEqual(manifest.details.dbs, [0]);

    const v = await runCli(['--config', cfg, '--json', 'verify', 'redis', 'latest']);
    assert.equal(v.code, 0, v.stdout);

    const target = await startCluster(3);
    others.push(target);
    const r = await runCli(['--config', cfg, '--json', 'restore', 'redis', 'latest', '--target', `redis://127.0.0.1:${target.nodes[2]!.port}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { restored: number }).restored, 3060);
    assert.deepEqual(await target.snapshot(), expected, 'the other cluster holds the same keys, values and TTLs');
    // Each key landed on the primary that owns its slot, not all on the seed node.
    for (const n of target.nodes) assert.ok(Number(await n.client(0).dbsize()) > 500, `node ${n.port} holds its share`);

    const again = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--target', `redis://127.0.0.1:${target.nodes[0]!.port}`]);
    assert.equal(again.code, 64, 'a cluster with keys is not restored into unconfirmed');
    assert.match(again.stderr, /3060 keys/);

    const single: TestRedis = await startRedis();
    others.push(single);
    const s = await runCli(['--config', cfg, '--json', 'restore', 'redis', 'latest', '--target', single.url]);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(await snapshot(single.client(0)), expected, 'the single server holds every primary\'s keys');
  });

  it('a primary marked failed: refused with its address, nothing written, rather than an archive missing its slots', async () => {
    const broken = await startCluster(3);
    others.push(broken);
    await broken.client().set('k', 'v');
    const down = broken.nodes[2]!;
    await down.stop();
    const seed = `redis://127.0.0.1:${broken.nodes[0]!.port}`;
    // The remaining primaries mark it failed after the 1 s node timeout.
    for (let i = 0; i < 100; i += 1) {
      const c = broken.nodes[0]!.client(0);
      const nodes = (await c.call('CLUSTER', 'NODES')) as string;
      c.disconnect();
      if (nodes.split('\n').some((l) => l.includes(`:${down.port}@`) && /\bfail\b/.test(l))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const dir = await tempDir();
    try {
      const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'broken', url: seed, mode: 'logical' }] });
      const r = await runCli(['--config', c, '--json', 'backup', 'redis']);
      assert.equal(r.code, 2);
      const error = (JSON.parse(r.stdout) as BackupJson).results[0]?.error ?? '';
      assert.match(error, new RegExp(`cluster primary 127\\.0\\.0\\.1:${down.port} is marked [^:]*fail`));
      assert.deepEqual(await filesUnder(`${dir}/repo`), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a backup holding databases other than 0 is refused by a cluster before anything is written', async () => {
    const multi = await startRedis();
    others.push(multi);
    await multi.client(0).set('a', '1');
    await multi.client(5).set('b', '2');
    const dir = await tempDir();
    try {
      const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'multi', url: multi.url, mode: 'logical' }] });
      assert.equal((await runCli(['--config', c, 'backup', 'redis'])).code, 0);
      const target = await startCluster(3);
      others.push(target);
      const r = await runCli(['--config', c, 'restore', 'redis', 'latest', '--target', `redis://127.0.0.1:${target.nodes[0]!.port}`]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /database\(s\) 5 .* is a cluster, which has database 0 only/);
      assert.deepEqual(await target.snapshot(), {});
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

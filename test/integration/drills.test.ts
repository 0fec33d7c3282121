import assert from 'node:assert/strict';
import { chmod, link, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load.js';
import { createJobContext } from '../../src/jobs/context.js';
import { drillKnowledgeJob, drillRedisJob } from '../../src/jobs/drill-jobs.js';
import { drillPostgresJob } from '../../src/jobs/postgres-jobs.js';
import { silentLog } from '../../src/log.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, query, type TestDatabase } from '../helpers/postgres.js';
import { fillAllTypes, startRedis, type TestRedis } from '../helpers/redis.js';

interface DrillJson {
  component: string;
  name: string;
  ok: boolean;
  compared: number;
  restoreSeconds: number;
  rpoSeconds?: number;
  differences?: string[];
  schemaChanges?: string[];
  digests?: Record<string, { keys: number; digest: string }>;
  failure?: string;
}

describe('restore drills for every component, and drill all with RTO and RPO', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let work: string;
  let cfg: string;
  let keys = 0;
  before(async () => {
    db = await createSeedDatabase(300, 'ops_drill');
    redis = await startRedis();
    const c = redis.client();
    await fillAllTypes(c);
    const c3 = redis.client(3);
    for (let i = 0; i < 200; i += 1) await c3.set(`k:${i}`, `v${i}`, 'PX', 3_600_000 + i);
    keys = (await c.dbsize()) + (await c3.dbsize());
    work = await tempDir('ops-drills-');
    const kb = path.join(work, 'kb');
    await mkdir(path.join(kb, 'docs/deep'), { recursive: true });
    await writeFile(path.join(kb, 'docs/a.md'), '# a\n');
    await writeFile(path.join(kb, 'docs/deep/b.bin'), Buffer.alloc(70_000, 7));
    await chmod(path.join(kb, 'docs/deep/b.bin'), 0o640);
    await symlink('a.md', path.join(kb, 'docs/link-to-a'));
    await link(path.join(kb, 'docs/a.md'), path.join(kb, 'docs/hard-a.md'));
    cfg = await writeConfig(work, {
      repository: { url: `file://${work}/repo` },
      postgres: [{ name: 'main', url: db.url }],
      redis: [{ name: 'cache', url: redis.url, mode: 'logical' }],
      knowledge: [{ name: 'kb', path: kb }],
    });
    for (const component of ['postgres', 'redis', 'knowledge']) {
      const b = await runCli(['--config', cfg, 'backup', component]);
      assert.equal(b.code, 0, b.stderr);
    }
  });
  after(async () => {
    await db?.drop();
    await redis?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const ctx = () => createJobContext(loadConfig(cfg), silentLog);

  it('drill redis: every key read back from a scratch redis-server the drill starts and stops; values, types, expiries and counts match', async () => {
    const r = await runCli(['--config', cfg, '--json', 'drill', 'redis']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = (JSON.parse(r.stdout) as { results: DrillJson[] }).results[0]!;
    assert.equal(d.ok, true, d.failure);
    assert.equal(d.compared, keys);
    assert.deepEqual(Object.keys(d.digests ?? {}).sort(), ['db0', 'db3']);
    assert.equal(d.digests!.db3!.keys, 200);
    assert.match(d.digests!.db0!.digest, /^[0-9a-f]{64}$/);
    assert.deepEqual(d.differences, []);
  });

  it('SIGTERM during drill redis and drill knowledge (the job signal aborted while the scratch server runs): interrupted, the server stopped, the scratch directory removed, nothing recorded', async () => {
    for (const job of ['redis', 'knowledge'] as const) {
      const controller = new AbortController();
      const c = createJobContext(loadConfig(cfg), silentLog, { signal: controller.signal });
      const scratchRoot = await tempDir(`ops-drill-sig-${job}-`);
      let scratch = '';
      const run = job === 'redis' ? drillRedisJob : drillKnowledgeJob;
      await assert.rejects(
        run(c, undefined, {
          scratchRoot,
          afterRestore: async (target) => {
            scratch = target;
            controller.abort(new Error('SIGTERM'));
          },
        }),
        (e: Error) => e.name === 'DrillInterruptedError' && /interrupted: its scratch server was stopped and its scratch data removed; no drill was recorded/.test(e.message),
      );
      assert.ok(scratch, `${job}: the drill got as far as its scratch target`);
      assert.deepEqual(await readdir(scratchRoot), [], `${job}: scratch directory removed`);
      if (job === 'redis') {
        const probe = new Redis(scratch, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        await assert.rejects(probe.connect(), `${job}: the scratch redis-server is gone`);
        probe.disconnect();
      }
      await rm(scratchRoot, { recursive: true, force: true });
    }
  });

  it('--html writes the page for one component too; a page that cannot be written is named, the report still printed, exit 64', async () => {
    const dir = await tempDir('ops-drill-html-');
    try {
      const page = path.join(dir, 'drill.html');
      const r = await runCli(['--config', cfg, 'drill', 'knowledge', '--html', page]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(await readFile(page, 'utf8'), /knowledge\//);
      const missing = path.join(dir, 'no', 'such', 'status.html');
      const s = await runCli(['--config', cfg, 'status', '--html', missing]);
      assert.equal(s.code, 64, s.stdout + s.stderr);
      assert.match(s.stdout, /COMPONENT +STATE/, 'the report is printed');
      assert.match(s.stdout, new RegExp(`error: the HTML page was not written to ${missing}: the directory ${path.join(dir, 'no', 'such')} does not exist`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drill redis fails, naming the key, when the restored data differs from the archive (a value, an expiry, an extra key)', async () => {
    const drills = await drillRedisJob(ctx(), undefined, {
      afterRestore: async (url) => {
        const c = new Redis(url);
        const c3 = new Redis(`${url.replace(/\/0$/, '')}/3`);
        await c.set('str', 'changed');
        await c3.pexpire('k:7', 10_000_000);
        await c3.set('extra', '1');
        c.disconnect();
        c3.disconnect();
      },
    });
    const d = drills[0]!;
    assert.equal(d.ok, false);
    const text = (d.differences ?? []).join('\n');
    assert.match(text, /db0 key "str": value differs from the archive/);
    assert.match(text, /db3 key "k:7": expires .*, the archive says /);
    assert.match(text, /db3: 201 keys restored, the archive holds 200/);
  });

  it('an empty Redis backed up (logical and rdb) and restored empty is a passed drill of 0 keys, as on a fresh install', async () => {
    const empty = await startRedis();
    const dir = await tempDir('ops-empty-redis-');
    try {
      for (const mode of ['logical', 'rdb']) {
        const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo-${mode}` }, redis: [{ name: 'cache', url: empty.url, mode }] });
        const b = await runCli(['--config', c, 'backup', 'redis']);
        assert.equal(b.code, 0, b.stderr);
        const d = await runCli(['--config', c, '--json', 'drill', 'redis']);
        assert.equal(d.code, 0, `${mode}: ${d.stdout}${d.stderr}`);
        const r = (JSON.parse(d.stdout) as { results: DrillJson[] }).results[0]!;
        assert.equal(r.ok, true, `${mode}: ${r.failure}`);
        assert.equal(r.compared, 0);
        const table = await runCli(['--config', c, 'drill', 'redis']);
        assert.match(table.stdout, /\b0 keys\b/, `${mode}: ${table.stdout}`);
      }
    } finally {
      await empty.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drill redis without a redis-server to start fails naming it, and leaves no scratch directory', async () => {
    const scratchRoot = path.join(work, 'no-server');
    await mkdir(scratchRoot);
    const drills = await drillRedisJob(createJobContext(loadConfig(cfg), silentLog, { env: { ...process.env, OPS_REDIS_SERVER: '/nonexistent/redis-server' } }), undefined, { scratchRoot });
    assert.equal(drills[0]!.ok, false);
    assert.match(drills[0]!.failure ?? '', /restore failed: the drill's scratch redis-server \(\/nonexistent\/redis-server\) did not start/);
    assert.deepEqual(await readdir(scratchRoot), []);
  });

  it('drill knowledge: every file, link and mode of the restored tree matches the manifest; a changed file fails it by name', async () => {
    const r = await runCli(['--config', cfg, '--json', 'drill', 'knowledge']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = (JSON.parse(r.stdout) as { results: DrillJson[] }).results[0]!;
    assert.equal(d.ok, true, d.failure);
    assert.equal(d.compared, 6, 'docs, docs/a.md, docs/deep, docs/deep/b.bin, docs/hard-a.md, docs/link-to-a');
    const bad = await drillKnowledgeJob(ctx(), undefined, {
      afterRestore: async (tree) => {
        await writeFile(path.join(tree, 'docs/deep/b.bin'), Buffer.alloc(70_000, 8));
        await chmod(path.join(tree, 'docs/a.md'), 0o600);
      },
    });
    assert.equal(bad[0]!.ok, false);
    assert.match((bad[0]!.differences ?? []).join('\n'), /docs\/deep\/b\.bin: sha256\/size differ from the manifest/);
    assert.match((bad[0]!.differences ?? []).join('\n'), /docs\/a\.md: mode 600, the manifest says 644/);
  });

  it('drill postgres fails naming the table whose rows are missing; a migration after the backup shows as a schema change (exit 1)', async () => {
    const bad = await drillPostgresJob(ctx(), undefined, { afterRestore: async (url) => void (await query(new URL(url).pathname.slice(1), 'delete from public.call_turns_2026_02 where id % 2 = 0')) });
    assert.equal(bad[0]!.ok, false);
    assert.match(bad[0]!.failure ?? '', /public\.call_turns_2026_02: expected \d+, got \d+/);
    await query(db.name, 'alter table public.calls add column note text');
    try {
      const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const d = (JSON.parse(r.stdout) as { results: DrillJson[] }).results[0]!;
      assert.equal(d.ok, true);
      assert.ok((d.schemaChanges ?? []).includes('changed: CREATE TABLE public.calls: live adds "note text"'), (d.schemaChanges ?? []).join('\n'));
    } finally {
      await query(db.name, 'alter table public.calls drop column note');
    }
    // A month partition maintenance added after the backup is listed apart, and is not a migration.
    await query(db.name, "create table public.calls_2027_01 partition of public.calls for values from ('2027-01-01 00:00:00+00') to ('2027-02-01 00:00:00+00')");
    try {
      const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const d = (JSON.parse(r.stdout) as { results: (DrillJson & { partitionChanges?: string[] })[] }).results[0]!;
      assert.deepEqual(d.schemaChanges, []);
      assert.deepEqual(d.partitionChanges, ['live: public.calls_2027_01']);
    } finally {
      await query(db.name, 'drop table public.calls_2027_01');
    }
  });

  it('drill all: every component in turn, RTO per component and in total, the worst RPO; table, JSON and an HTML page', async () => {
    const html = path.join(work, 'drill.html');
    const r = await runCli(['--config', cfg, '--json', 'drill', 'all', '--html', html]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; rtoSeconds: number; rpoSeconds: number; drills: DrillJson[]; notCovered: string[] };
    assert.equal(report.ok, true);
    assert.deepEqual(report.drills.map((d) => `${d.component}/${d.name}`), ['postgres/main', 'redis/cache', 'knowledge/kb']);
    for (const d of report.drills) {
      assert.ok(d.restoreSeconds > 0, `${d.component} RTO`);
      assert.ok((d.rpoSeconds ?? -1) > 0, `${d.component} RPO`);
    }
    assert.ok(Math.abs(report.rtoSeconds - report.drills.reduce((a, d) => a + d.restoreSeconds, 0)) < 1e-6);
    assert.equal(report.rpoSeconds, Math.max(...report.drills.map((d) => d.rpoSeconds!)));
    const page = await readFile(html, 'utf8');
    for (const c of ['postgres/main', 'redis/cache', 'knowledge/kb', 'RTO', 'RPO']) assert.ok(page.includes(c), c);
    const table = await runCli(['--config', cfg, 'drill', 'all']);
    assert.match(table.stdout, /total RTO .* worst RPO/);
  });
});

import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, dbUrl, dropDatabase, tableDigests, type TestDatabase } from '../helpers/postgres.js';
import { fillAllTypes, snapshot, startRedis, type TestRedis } from '../helpers/redis.js';

interface PlanJson {
  repository: string;
  targets: number;
  items: { component: string; name: string; backupId: string; verifiedLevel: number | null; source: string | null; command: string; problem?: string }[];
}

/*
 * Recovery from the bucket alone: a machine that knows only the repository URL. The CLI
 * runs in an empty directory (no ops.config.json, no OPS_CONFIG), so nothing but the
 * repository and the backups' own carried configuration can tell it what to restore.
 */
describe('disaster recovery from the repository alone: dr plan and dr restore with no configuration', () => {
  let db: TestDatabase;
  let source: TestRedis;
  let work: string;
  let empty: string;
  let repoUrl: string;
  const restoredDb = `ops_dr_restored_${process.pid}`;
  const ids: Record<string, string> = {};
  before(async () => {
    db = await createSeedDatabase(400, 'ops_dr');
    source = await startRedis();
    await fillAllTypes(source.client());
    work = await tempDir('ops-dr-');
    empty = path.join(work, 'fresh-machine');
    await mkdir(empty);
    const kb = path.join(work, 'kb');
    await mkdir(path.join(kb, 'guides'), { recursive: true });
    await writeFile(path.join(kb, 'guides/returns.md'), '# Returns\nwithin 30 days\n');
    await writeFile(path.join(kb, 'prices.csv'), 'sku,price\nA1,9.99\n');
    repoUrl = `file://${work}/repo`;
    await mkdir(path.join(work, 'ops'));
    const cfg = await writeConfig(path.join(work, 'ops'), {
      repository: { url: repoUrl },
      postgres: [{ name: 'main', url: db.url }],
      redis: [{ name: 'cache', url: source.url, mode: 'logical' }],
      knowledge: [{ name: 'kb', path: kb }],
    });
    for (const component of ['postgres', 'redis', 'knowledge']) {
      const b = await runCli(['--config', cfg, '--json', 'backup', component]);
      assert.equal(b.code, 0, b.stderr);
      ids[component] = (JSON.parse(b.stdout) as { results: { id: string }[] }).results[0]!.id;
      const v = await runCli(['--config', cfg, 'verify', component]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    }
  });
  after(async () => {
    await db?.drop();
    await dropDatabase(restoredDb);
    await source?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const bare = (args: string[]) => runCli(args, { cwd: empty, env: { OPS_CONFIG: undefined, OPS_REPOSITORY_URL: undefined, DATABASE_URL: undefined, REDIS_URL: undefined } });

  it('every backup carries its configuration, with no secret in it', async () => {
    const dir = path.join(work, 'repo', 'redis', 'cache', ids.redis!);
    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { config?: { redis?: { name: string; mode: string }[]; source?: unknown } };
    assert.deepEqual(manifest.config?.redis?.map((r) => [r.name, r.mode]), [['cache', 'logical']]);
    assert.equal(manifest.config?.source, undefined, 'the config file path means nothing on another machine');
    const text = JSON.stringify(manifest.config);
    assert.doesNotMatch(text, /password|PGPASSWORD/i);
  });

  it('dr plan, on a machine with no configuration, lists exactly what was backed up, with the commands', async () => {
    assert.equal((await readdir(empty)).length, 0, 'no ops.config.json where the CLI runs');
    const r = await bare(['--json', 'dr', 'plan', '--repository', repoUrl]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const plan = JSON.parse(r.stdout) as PlanJson;
    assert.equal(plan.targets, 3);
    assert.deepEqual(
      plan.items.map((i) => [i.component, i.name, i.backupId, i.verifiedLevel]),
      [
        ['postgres', 'main', ids.postgres, 3],
        ['redis', 'cache', ids.redis, 3],
        ['knowledge', 'kb', ids.knowledge, 3],
      ],
    );
    assert.equal(plan.items[0]!.source, db.url);
    assert.equal(plan.items[1]!.source, source.url);
    for (const i of plan.items) assert.match(i.command, new RegExp(`^opsctl dr restore --repository ${repoUrl.replace(/[/.]/g, '\\$&')} --backup ${i.component}/${i.name}=${i.backupId} --target ${i.component}/${i.name}=`));
    const table = await bare(['dr', 'plan', '--repository', repoUrl]);
    assert.match(table.stdout, /postgres\/main +\d{8}T\d{6}Z/);
  });

  it("dr restore runs the plan's commands into named targets: the data comes back equal", async () => {
    const plan = JSON.parse((await bare(['--json', 'dr', 'plan', '--repository', repoUrl])).stdout) as PlanJson;
    const target = await startRedis();
    try {
      const into: Record<string, string> = { postgres: dbUrl(restoredDb), redis: target.url, knowledge: path.join(work, 'kb-restored') };
      // The plan's own command lines, with only the target filled in.
      const args = plan.items.flatMap((i) => {
        const words = i.command.split(' ').slice(1);
        const t = words.indexOf('--target');
        words[t + 1] = `${i.component}/${i.name}=${into[i.component]!}`;
        return words.slice(2);
      });
      const r = await bare(['--json', 'dr', 'restore', '--repository', repoUrl, ...args.filter((w, k, all) => !(w === '--repository' || all[k - 1] === '--repository'))]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout) as { results: { component: string; ok: boolean; seconds: number }[]; rtoSeconds: number };
      assert.deepEqual(out.results.map((x) => [x.component, x.ok]), [['postgres', true], ['redis', true], ['knowledge', true]]);
      assert.ok(out.rtoSeconds > 0);
      assert.deepEqual(await tableDigests(restoredDb), await tableDigests(db.name));
      assert.deepEqual(await snapshot(target.client()), await snapshot(source.client()));
      assert.equal(await readFile(path.join(work, 'kb-restored/guides/returns.md'), 'utf8'), '# Returns\nwithin 30 days\n');
      // Run again: every target now holds data, and is refused unless confirmed.
      const again = await bare(['--json', 'dr', 'restore', '--repository', repoUrl, '--target', `postgres/main=${into.postgres!}`]);
      assert.equal(again.code, 2);
      assert.match(again.stdout, new RegExp(`add --confirm postgres/main=${restoredDb} to restore over it`));
    } finally {
      await target.stop();
    }
  });

  it('bad requests name what to fix and exit 64', async () => {
    const r = await bare(['dr', 'restore', '--repository', repoUrl, '--target', 'nope/x=1']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /--target takes COMPONENT\/NAME=VALUE with COMPONENT one of postgres, redis, knowledge; not: nope\/x=1/);
    const none = await bare(['dr', 'restore', '--repository', repoUrl, '--target', 'postgres/absent=postgresql://127.0.0.1/x']);
    assert.equal(none.code, 64);
    assert.match(none.stderr, /holds no complete backup of postgres\/absent: opsctl dr plan lists what it holds/);
    const missing = await bare(['dr', 'plan']);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /--repository/);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { listBackups } from '../../src/backup/catalog.js';
import { backupPostgres, type PostgresCodec } from '../../src/backup/postgres-backup.js';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { S3Repository } from '../../src/repository/s3-repository.js';
import { postgresConfig, runCli, tempDir, writeConfig, writeScript, ROOT } from '../helpers/cli.js';
import { createSeedDatabase, createTestDatabase, dbUrl, tableDigests, type TestDatabase } from '../helpers/postgres.js';
import { filesUnder } from '../helpers/repo.js';
import { startLocalS3, removeLocalS3, type LocalS3 } from '../helpers/s3.js';

/** Restore a stored payload with the stock tools (zstd, pg_restore): the artifact stands on its own. */
function restoreWithStockTools(payload: string, database: string): void {
  const decoded = payload.endsWith('.zst') ? `${payload}.raw` : payload;
  if (payload.endsWith('.zst')) execFileSync('zstd', ['-d', '-q', '-f', payload, '-o', decoded]);
  execFileSync('pg_restore', ['--no-owner', `--dbname=${dbUrl(database)}`, decoded]);
}

describe('PostgreSQL backup', () => {
  let source: TestDatabase;
  let sourceDigests: Record<string, string>;
  let work: string;
  const cleanup: TestDatabase[] = [];

  before(async () => {
    source = await createSeedDatabase(6_000);
    sourceDigests = await tableDigests(source.name);
    work = await tempDir();
  });
  after(async () => {
    await source?.drop();
    for (const db of cleanup) await db.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('opsctl backup postgres writes payload then manifest to file://, restorable by stock pg_restore', async () => {
    const repoDir = path.join(work, 'repo-cli');
    const cfg = await writeConfig(work, postgresConfig('callcenter', source.url, `file://${repoDir}`));
    const r = await runCli(['--config', cfg, '--json', 'backup', 'postgres']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { results: { ok: boolean; id: string; bytes: number }[] };
    assert.equal(out.results[0]?.ok, true);
    const id = out.results[0]!.id;
    assert.deepEqual(await filesUnder(repoDir), [`postgres/callcenter/${id}/db.dump.zst`, `postgres/callcenter/${id}/manifest.json`, `postgres/callcenter/${id}/reservation.json`]);
    const manifest = JSON.parse(await readFile(path.join(repoDir, `postgres/callcenter/${id}/manifest.json`), 'utf8'));
    assert.equal(manifest.payload.bytes, out.results[0]!.bytes);
    assert.match(manifest.payload.sha256, /^[0-9a-f]{64}$/);
    assert.equal(manifest.payload.compression, 'pg_dump -Z0 | zstd -1 -T2');
    assert.ok(manifest.tools.pg_dump && manifest.tools.zstd, 'tool versions recorded');
    assert.deepEqual(
      manifest.tables.filter((t: { kind: string }) => t.kind === 'partitioned').map((t: { name: string }) => t.name),
      ['call_tool_calls', 'call_turns', 'calls'],
    );
    const sha = execFileSync('sha256sum', [path.join(repoDir, manifest.payload.key)], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(sha, manifest.payload.sha256, 'sha256 computed in flight equals the stored file');

    const target = await createTestDatabase('ops_test_restore');
    cleanup.push(target);
    restoreWithStockTools(path.join(repoDir, manifest.payload.key), target.name);
    assert.deepEqual(await tableDigests(target.name), sourceDigests);
  });

  for (const codec of ['gzip', 'none', 'zstd'] as PostgresCodec[]) {
    it(`codec ${codec}: round trip equals the source table by table`, async () => {
      const repoDir = path.join(work, `repo-${codec}`);
      const repo = new FileRepository(repoDir);
      const manifest = await backupPostgres({ name: 'db', url: source.url }, { codec, threads: 2 }, { repo, log: silentLog });
      assert.equal(manifest.payload.streamCodec, codec === 'zstd' ? 'zstd' : 'none');
      const target = await createTestDatabase('ops_test_restore');
      cleanup.push(target);
      restoreWithStockTools(path.join(repoDir, manifest.payload.key), target.name);
      assert.deepEqual(await tableDigests(target.name), sourceDigests);
    });
  }

  it('two backups in the same second get distinct ids', async () => {
    const repo = new FileRepository(path.join(work, 'repo-same-second'));
    const at = new Date('2026-02-14T04:00:00Z');
    const a = await backupPostgres({ name: 'db', url: source.url }, { codec: 'gzip', threads: 1 }, { repo, log: silentLog, now: () => at });
    const b = await backupPostgres({ name: 'db', url: source.url }, { codec: 'gzip', threads: 1 }, { repo, log: silentLog, now: () => at });
    assert.deepEqual([a.id, b.id], ['20260214T040000Z', '20260214T040000Z-1']);
    assert.equal((await listBackups(repo, 'postgres', 'db')).filter((e) => e.manifest).length, 2);
  });

  describe('to S3 (s3rver on loopback)', () => {
    let s3: LocalS3;
    before(async () => {
      s3 = await startLocalS3();
    });
    after(async () => {
      await removeLocalS3(s3);
    });

    it('streams a multipart upload, writes the manifest last, and restores', async () => {
      const dir = await tempDir();
      const cfg = await writeConfig(dir, {
        ...postgresConfig('callcenter', source.url, `s3://${s3.bucket}/nightly`, { backup: { codec: 'none' } }),
        repository: { url: `s3://${s3.bucket}/nightly`, partSizeMiB: 5 },
      });
      const r = await runCli(['--config', cfg, '--json', 'backup', 'postgres'], { env: s3.env });
      assert.equal(r.code, 0, r.stderr);
      const id = (JSON.parse(r.stdout) as { results: { id: string; bytes: number }[] }).results[0]!;
      assert.ok(id.bytes > 5 * 1024 * 1024, `payload ${id.bytes} bytes spans several 5 MiB parts`);
      assert.deepEqual(await s3.keys('nightly/'), [`nightly/postgres/callcenter/${id.id}/db.dump`, `nightly/postgres/callcenter/${id.id}/manifest.json`, `nightly/postgres/callcenter/${id.id}/reservation.json`]);
      assert.equal(await s3.multipartUploads(), 0);

      const local = path.join(dir, 'db.dump');
      const obj = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `nightly/postgres/callcenter/${id.id}/db.dump` }));
      await pipeline(obj.Body as NodeJS.ReadableStream, createWriteStream(local));
      const target = await createTestDatabase('ops_test_restore');
      cleanup.push(target);
      restoreWithStockTools(local, target.name);
      assert.deepEqual(await tableDigests(target.name), sourceDigests);

      const list = await runCli(['--config', cfg, '--json', 'backups', 'list', 'postgres'], { env: s3.env });
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout) as { backups: { id: string; complete: boolean; verified: unknown }[] };
      assert.deepEqual(listed.backups.map((b) => [b.id, b.complete, b.verified]), [[id.id, true, null]]);
    });

    it('pg_dump dying mid-stream: exit 2, upload aborted, no manifest, nothing left', async () => {
      const dir = await tempDir();
      const fake = await writeScript(dir, 'pg_dump', 'if [ "$1" = --version ]; then exec pg_dump --version; fi\npg_dump "$@" | head -c 300000\nexit 1');
      const cfg = await writeConfig(dir, postgresConfig('failing', source.url, `s3://${s3.bucket}/fail`, { backup: { codec: 'none' } }));
      const r = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { ...s3.env, OPS_PG_DUMP: fake } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /pg_dump exited with 1/);
      assert.deepEqual(await s3.keys('fail/'), []);
      assert.equal(await s3.multipartUploads(), 0);
    });

    it('a missing bucket: exit 2 with the reason, nothing written', async () => {
      const dir = await tempDir();
      const cfg = await writeConfig(dir, postgresConfig('nobucket', source.url, 's3://no-such-bucket/x'));
      const r = await runCli(['--config', cfg, 'backup', 'postgres'], { env: s3.env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /NoSuchBucket|does not exist/);
    });

    it('the S3 endpoint going away mid-upload: exit 2, and after it returns no manifest and no upload remain', async () => {
      const dir = await tempDir();
      const slow = await writeScript(dir, 'pg_dump', 'if [ "$1" = --version ]; then exec pg_dump --version; fi\npg_dump "$@"\nsleep 2');
      const cfg = await writeConfig(dir, {
        ...postgresConfig('outage', source.url, `s3://${s3.bucket}/outage`, { backup: { codec: 'none' } }),
        repository: { url: `s3://${s3.bucket}/outage`, partSizeMiB: 5 },
      });
      const run = runCli(['--config', cfg, 'backup', 'postgres'], { env: { ...s3.env, OPS_PG_DUMP: slow } });
      await new Promise((r) => setTimeout(r, 1200));
      await s3.stop();
      const r = await run;
      await s3.restart();
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /postgres backup of outage failed/);
      assert.deepEqual((await s3.keys('outage/')).filter((k) => k.endsWith('manifest.json')), [], 'no manifest: no backup');
      // The abort could not reach a server that was down; the next prune (or the bucket's
      // lifecycle rule) removes what is left once it is a day old.
      const repo = new S3Repository({ bucket: s3.bucket, prefix: 'outage', partSizeMiB: 5, queueSize: 1, client: s3.client });
      await repo.cleanupIncomplete(new Date(Date.now() + 60_000));
      assert.equal(await s3.multipartUploads(), 0);
    });

    it('SIGTERM (Fargate stop) aborts: exit 2, no manifest, no upload', async () => {
      const dir = await tempDir();
      const hang = await writeScript(dir, 'pg_dump', 'if [ "$1" = --version ]; then exec pg_dump --version; fi\npg_dump "$@" | head -c 7000000\nexec sleep 30');
      const cfg = await writeConfig(dir, {
        ...postgresConfig('stopped', source.url, `s3://${s3.bucket}/stopped`, { backup: { codec: 'none' } }),
        repository: { url: `s3://${s3.bucket}/stopped`, partSizeMiB: 5 },
      });
      let pid = 0;
      const run = runCli(['--config', cfg, 'backup', 'postgres'], { env: { ...s3.env, OPS_PG_DUMP: hang }, onSpawn: (p) => (pid = p) });
      for (let i = 0; i < 100 && (await s3.multipartUploads()) === 0; i += 1) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await s3.multipartUploads(), 1, 'a multipart upload is under way');
      process.kill(pid, 'SIGTERM');
      const r = await run;
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /aborted \(SIGTERM\); partial data removed, no manifest written/);
      assert.deepEqual(await s3.keys('stopped/'), []);
      assert.equal(await s3.multipartUploads(), 0);
    });
  });

  describe('failures on file://', () => {
    it('pg_dump killed by a signal mid-stream: exit 2, no payload, no partial file', async () => {
      const dir = await tempDir();
      const repoDir = path.join(dir, 'repo');
      const fake = await writeScript(dir, 'pg_dump', 'if [ "$1" = --version ]; then exec pg_dump --version; fi\npg_dump "$@" | head -c 300000\nkill -9 $$');
      const cfg = await writeConfig(dir, postgresConfig('killed', source.url, `file://${repoDir}`));
      const r = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { OPS_PG_DUMP: fake } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /pg_dump was killed by SIGKILL/);
      assert.deepEqual(await filesUnder(repoDir), []);
    });

    it('SIGTERM while writing: exit 2, partial file removed', async () => {
      const dir = await tempDir();
      const repoDir = path.join(dir, 'repo');
      const hang = await writeScript(dir, 'pg_dump', 'if [ "$1" = --version ]; then exec pg_dump --version; fi\npg_dump "$@" | head -c 300000\nexec sleep 30');
      const cfg = await writeConfig(dir, postgresConfig('stopped', source.url, `file://${repoDir}`, { backup: { codec: 'none' } }));
      let pid = 0;
      const run = runCli(['--config', cfg, 'backup', 'postgres'], { env: { OPS_PG_DUMP: hang }, onSpawn: (p) => (pid = p) });
      const partial = async () => (await filesUnder(repoDir)).find((f) => /db\.dump\.partial-/.test(f));
      for (let i = 0; i < 100 && !(await partial()); i += 1) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await partial(), 'the payload is being written');
      process.kill(pid, 'SIGTERM');
      const r = await run;
      assert.equal(r.code, 2);
      assert.deepEqual(await filesUnder(repoDir), []);
    });

    it('a pg_dump older than the server is refused before dumping', async () => {
      const dir = await tempDir();
      const old = await writeScript(dir, 'pg_dump', 'echo "pg_dump (PostgreSQL) 9.6.24"');
      const cfg = await writeConfig(dir, postgresConfig('old', source.url, `file://${path.join(dir, 'repo')}`));
      const r = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { OPS_PG_DUMP: old } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /pg_dump 9 cannot dump a PostgreSQL 1\d server: install postgresql-client-1\d/);
      assert.deepEqual(await filesUnder(path.join(dir, 'repo')), []);
    });

    it('unreachable server or unknown role: one clear line, exit 2, password never printed', async () => {
      const dir = await tempDir();
      const cfg = await writeConfig(dir, postgresConfig('db', 'postgresql://127.0.0.1:9/x', `file://${path.join(dir, 'repo')}`));
      const refused = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { DATABASE_URL: 'postgresql://app:topsecret@127.0.0.1:9/x' } });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /cannot connect to postgresql:\/\/app:\*\*\*@127\.0\.0\.1:9\/x: .*ECONNREFUSED.*nothing listens there/);
      assert.doesNotMatch(refused.stderr + refused.stdout, /topsecret/);
      const role = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { DATABASE_URL: `postgresql://no_such_role_x:pw@127.0.0.1:5432/${source.name}` } });
      assert.equal(role.code, 2);
      assert.match(role.stderr, /role "no_such_role_x" does not exist/);
    });

    it('a repository that cannot be written: exit 2, nothing left', async () => {
      const dir = await tempDir();
      const blocker = path.join(dir, 'not-a-dir');
      await writeFile(blocker, 'x');
      const cfg = await writeConfig(dir, postgresConfig('db', source.url, `file://${blocker}/repo`));
      const r = await runCli(['--config', cfg, 'backup', 'postgres']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /not-a-dir\/repo\/postgres\/db: ENOTDIR/);
      assert.doesNotMatch(r.stderr, /\n.*\n.*\n/, 'one clear line, not a stack');
    });
  });

  describe('bad usage', () => {
    it('an invalid config: exit 64 with every problem, as JSON too', async () => {
      const dir = await tempDir();
      const cfg = await writeConfig(dir, { repository: { url: 'ftp://x' }, postgres: [{ name: 'A B', url: 'postgresql://u:p@h/d' }] });
      const r = await runCli(['--config', cfg, '--json', 'backup', 'postgres']);
      assert.equal(r.code, 64);
      const doc = JSON.parse(r.stdout) as { error: { code: string; problems: { path: string }[] } };
      assert.equal(doc.error.code, 'CONFIG_INVALID');
      assert.deepEqual(doc.error.problems.map((p) => p.path).sort(), ['postgres.0.name', 'postgres.0.url', 'repository.url']);
    });

    it('an unknown component or command: exit 64', async () => {
      assert.equal((await runCli(['backup', 'mysql'])).code, 64);
      assert.equal((await runCli(['frobnicate'])).code, 64);
      assert.equal((await runCli(['restore', 'postgres', 'latest'])).code, 64, '--target is required');
      assert.equal((await runCli(['--help'])).code, 0);
    });

    it('an unknown --name: exit 64 naming the configured ones', async () => {
      const dir = await tempDir();
      const cfg = await writeConfig(dir, postgresConfig('callcenter', source.url, `file://${path.join(dir, 'repo')}`));
      const r = await runCli(['--config', cfg, 'backup', 'postgres', '--name', 'billing']);
      assert.equal(r.code, 64);
      assert.match(r.stderr, /postgres "billing" is not configured; configured: callcenter/);
    });
  });

  it('the container entrypoint runs the same CLI as a process', async () => {
    const dir = await tempDir();
    const repoDir = path.join(dir, 'repo');
    const cfg = await writeConfig(dir, postgresConfig('callcenter', source.url, `file://${repoDir}`));
    const r = await runCli(['backup', 'postgres'], {
      command: [path.join(ROOT, 'containers', 'backup', 'entrypoint.sh')],
      env: { OPS_APP_DIR: ROOT, OPS_CONFIG: cfg },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /postgres\/callcenter\s+ok/);
    assert.equal((await filesUnder(repoDir)).filter((f) => f.endsWith('manifest.json')).length, 1);
  });

  it('the container entrypoint takes its configuration from OPS_CONFIG_JSON, as ECS injects it from SSM', async () => {
    const dir = await tempDir();
    const repoDir = path.join(dir, 'repo');
    const cfg = await writeConfig(dir, postgresConfig('callcenter', source.url, `file://${repoDir}`));
    const json = await readFile(cfg, 'utf8');
    const r = await runCli(['--json', 'backup', 'postgres', '--name', 'callcenter'], {
      command: [path.join(ROOT, 'containers', 'backup', 'entrypoint.sh')],
      env: { OPS_APP_DIR: ROOT, OPS_CONFIG: '', OPS_CONFIG_JSON: json },
      cwd: dir,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).results[0].ok, true);
    assert.equal((await filesUnder(repoDir)).filter((f) => f.endsWith('manifest.json')).length, 1);
    const bad = await runCli(['backup', 'postgres'], { command: [path.join(ROOT, 'containers', 'backup', 'entrypoint.sh')], env: { OPS_APP_DIR: ROOT, OPS_CONFIG: '', OPS_CONFIG_JSON: '{"postgres": 3}' }, cwd: dir });
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /postgres/);
  });
});

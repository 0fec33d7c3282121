import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { listBackups } from '../../src/backup/catalog.js';
import { writeBackup } from '../../src/backup/engine.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import type { Repository } from '../../src/repository/repository.js';
import { S3Repository, createS3Client } from '../../src/repository/s3-repository.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { removeLocalS3, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { createHash } from 'node:crypto';

/** A backup of fixed bytes through the one engine every component uses. */
function backupOf(repo: Repository, content: Buffer, at: Date) {
  return writeBackup({
    repo,
    component: 'knowledge',
    name: 'kb',
    payloadName: 'blob.bin',
    streamCodec: 'none',
    log: silentLog,
    now: () => at,
    start: () => ({ stream: Readable.from([content]), producers: [], stop() {} }),
    describe: (w): Manifest => ({
      formatVersion: 1,
      id: w.id,
      component: 'knowledge',
      name: 'kb',
      payload: { key: w.key, bytes: w.bytes, sha256: w.sha256, streamCodec: 'none', compression: 'none', format: 'bytes' },
      startedAt: w.startedAt.toISOString(),
      finishedAt: w.finishedAt.toISOString(),
      durationSeconds: 0,
      tools: {},
      source: {},
    }),
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(repo: Repository, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await repo.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('repository under races and faults', () => {
  let s3: LocalS3;
  let proxy: FaultProxy;
  const dirs: string[] = [];
  before(async () => {
    s3 = await startLocalS3('faults');
    proxy = await startFaultProxy(s3.endpoint, s3.env);
  });
  after(async () => {
    await proxy.stop();
    await removeLocalS3(s3);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const s3Repo = (prefix: string, timeouts = { requestTimeoutMs: 30_000, connectTimeoutMs: 2_000, maxAttempts: 3 }) =>
    new S3Repository({ bucket: s3.bucket, prefix, partSizeMiB: 5, queueSize: 2, client: createS3Client(proxy.env, timeouts) });

  for (const kind of ['file', 's3'] as const) {
    // The race: the id was "the start second, unless a listing shows it taken", so runs
    // starting in one second listed, found nothing, and wrote into the same id.
    it(`${kind}://: ten backups started in the same second get ten ids, each holding its own data`, async () => {
      const dir = await tempDir('ops-race-');
      dirs.push(dir);
      const repo = kind === 'file' ? new FileRepository(dir) : s3Repo(`race-${randomBytes(3).toString('hex')}`);
      const at = new Date('2026-12-01T04:00:00.123Z');
      const contents = Array.from({ length: 10 }, (_, i) => randomBytes(1000 + i));
      const results = await Promise.all(contents.map((c) => backupOf(repo, c, at)));
      const ids = results.map((r) => r.manifest.id);
      assert.equal(new Set(ids).size, 10, ids.join(' '));
      assert.ok(ids.every((id) => id.startsWith('20261201T040000Z')), ids.join(' '));
      const listed = await listBackups(repo, 'knowledge', 'kb');
      assert.equal(listed.filter((b) => b.manifest).length, 10);
      for (const [i, r] of results.entries()) {
        const stored = await readAll(repo, r.manifest.payload.key);
        assert.equal(sha(stored), sha(contents[i]!), `${r.manifest.id} holds the data of the run that reported it`);
        assert.equal(r.manifest.payload.sha256, sha(contents[i]!));
      }
    });
  }

  it('s3://: a manifest stored but answered with 500 on every try ends complete (read back), never half', async () => {
    const repo = s3Repo(`lie-${randomBytes(3).toString('hex')}`);
    proxy.add({ method: 'PUT', path: /manifest\.json/, action: { kind: 'forward-then-status', status: 500 } });
    try {
      const content = randomBytes(5000);
      const { manifest } = await backupOf(repo, content, new Date('2026-12-01T04:00:00Z'));
      assert.ok(proxy.requests.filter((r) => r.fault === 'forward-then-status').length >= 3, 'the SDK retried, every answer was a 500');
      const [entry] = await listBackups(repo, 'knowledge', 'kb');
      assert.equal(entry?.id, manifest.id);
      assert.ok(entry?.manifest, 'complete');
      assert.equal(sha(await readAll(repo, manifest.payload.key)), sha(content));
    } finally {
      proxy.clear();
    }
  });

  it('s3://: a manifest write whose outcome cannot be learned leaves nothing listed, and no manifest without payload', async () => {
    const repo = s3Repo(`unknown-${randomBytes(3).toString('hex')}`, { requestTimeoutMs: 30_000, connectTimeoutMs: 2_000, maxAttempts: 2 });
    proxy.add({ method: 'PUT', path: /manifest\.json/, action: { kind: 'forward-then-status', status: 500 } });
    proxy.add({ method: 'GET', path: /manifest\.json/, action: { kind: 'status', status: 500 } });
    try {
      await assert.rejects(backupOf(repo, randomBytes(5000), new Date('2026-12-01T04:00:00Z')), /backup of kb failed|failed/);
    } finally {
      proxy.clear();
    }
    const entries = await listBackups(repo, 'knowledge', 'kb');
    assert.deepEqual(entries.map((e) => [e.id, e.objects.length]), [], 'payload, manifest and reservation are gone');
  });

  it('s3://: a failed manifest write where a manifest this run did not write is read back: nothing is deleted, the run fails', async () => {
    const prefix = `foreign-${randomBytes(3).toString('hex')}`;
    const repo = s3Repo(prefix, { requestTimeoutMs: 30_000, connectTimeoutMs: 2_000, maxAttempts: 1 });
    proxy.add({ method: 'PUT', path: /manifest\.json/, action: { kind: 'forward-then-status', status: 500 } });
    proxy.add({ method: 'GET', path: /manifest\.json/, action: { kind: 'respond', body: '{"not":"ours"}' } });
    try {
      await assert.rejects(backupOf(repo, randomBytes(5000), new Date('2026-12-01T04:00:00Z')), /holds a manifest this run did not write: left as it is, with its payload/);
    } finally {
      proxy.clear();
    }
    const keys = (await s3.keys(prefix)).map((k) => k.split('/').pop());
    assert.deepEqual(keys.sort(), ['blob.bin', 'manifest.json', 'reservation.json'], 'payload, manifest and reservation all left in place');
  });

  it('one truncated manifest: list shows it BROKEN (exit 1), the others verify and restore; retention never counts it', async () => {
    const work = await tempDir('ops-broken-');
    dirs.push(work);
    const src = path.join(work, 'kb');
    await mkdir(src);
    await writeFile(path.join(src, 'a.txt'), 'first');
    const cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, knowledge: [{ name: 'kb', path: src, backup: { retention: { maxAgeDays: 1, keepVerified: 1 } } }] });
    assert.equal((await runCli(['--config', cfg, 'backup', 'knowledge'])).code, 0);
    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(path.join(src, 'a.txt'), 'second');
    assert.equal((await runCli(['--config', cfg, 'backup', 'knowledge'])).code, 0);
    const repoDir = path.join(work, 'repo', 'knowledge', 'kb');
    const [older, newer] = (await readdir(repoDir)).sort();
    const manifest = path.join(repoDir, newer!, 'manifest.json');
    const text = await readFile(manifest, 'utf8');
    await writeFile(manifest, text.slice(0, Math.floor(text.length / 2)));

    const list = await runCli(['--config', cfg, 'backups', 'list', 'knowledge']);
    assert.equal(list.code, 1, list.stderr);
    assert.match(list.stdout, new RegExp(`${newer}.*BROKEN: .*manifest\\.json is not a valid record`));
    assert.match(list.stdout, new RegExp(`${older}.*unverified`));
    const v = await runCli(['--config', cfg, 'verify', 'knowledge', older!]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    // The newest backup broken is what the nightly verify must page about.
    const latest = await runCli(['--config', cfg, 'verify', 'knowledge', 'latest']);
    assert.equal(latest.code, 2);
    assert.match(latest.stdout + latest.stderr, new RegExp(`backup "${newer}" for kb is broken`));
    const broken = await runCli(['--config', cfg, 'verify', 'knowledge', newer!]);
    assert.equal(broken.code, 2);
    assert.match(broken.stdout + broken.stderr, /is broken: .*manifest\.json is not a valid record/);
    const dest = path.join(work, 'restored');
    const r = await runCli(['--config', cfg, 'restore', 'knowledge', older!, '--target', dest]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(path.join(dest, 'a.txt'), 'utf8'), 'first');
    const prune = await runCli(['--config', cfg, '--json', 'prune', '--dry-run']);
    const decisions = (JSON.parse(prune.stdout) as { results: { decisions: { id: string; action: string; reason: string }[] }[] }).results[0]!.decisions;
    assert.match(decisions.find((d) => d.id === newer)?.reason ?? '', /broken, not counted/);
    assert.match(decisions.find((d) => d.id === older)?.reason ?? '', /among newest 1/);
  });

  const bigKnowledge = async (work: string) => {
    const src = path.join(work, 'kb');
    await mkdir(src);
    await writeFile(path.join(src, 'random.bin'), randomBytes(12 * 1024 * 1024)); // > 2 parts of 5 MiB, incompressible
    return src;
  };

  it('s3://: a store that never answers an upload part fails the backup in bounded time, the upload aborted', async () => {
    const work = await tempDir('ops-stall-');
    dirs.push(work);
    const prefix = `stall-${randomBytes(3).toString('hex')}`;
    const cfg = await writeConfig(work, { repository: { url: `s3://${s3.bucket}/${prefix}`, partSizeMiB: 5, requestTimeoutMs: 1_000, maxAttempts: 2 }, knowledge: [{ name: 'kb', path: await bigKnowledge(work) }] });
    proxy.add({ method: 'PUT', path: /partNumber=/, action: { kind: 'stall' } });
    const started = Date.now();
    try {
      const r = await runCli(['--config', cfg, 'backup', 'knowledge'], { env: proxy.env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /timed out|timeout|socket hang up|aborted/i);
    } finally {
      proxy.clear();
    }
    assert.ok(Date.now() - started < 30_000, `ended after ${Date.now() - started} ms`);
    assert.equal(await s3.multipartUploads(), 0, 'no open multipart upload');
    assert.deepEqual(await s3.keys(prefix), []);
  });

  it('s3://: SIGTERM while a part request hangs ends the job within seconds, upload aborted, nothing listed', async () => {
    const work = await tempDir('ops-term-');
    dirs.push(work);
    const prefix = `term-${randomBytes(3).toString('hex')}`;
    const cfg = await writeConfig(work, { repository: { url: `s3://${s3.bucket}/${prefix}`, partSizeMiB: 5 }, knowledge: [{ name: 'kb', path: await bigKnowledge(work) }] });
    proxy.add({ method: 'PUT', path: /partNumber=/, action: { kind: 'stall' } });
    let signalledAt = 0;
    const seenBefore = proxy.requests.length;
    try {
      const r = await runCli(['--config', cfg, 'backup', 'knowledge'], {
        env: proxy.env,
        onSpawn: (pid) => {
          const poll = setInterval(() => {
            if (proxy.requests.slice(seenBefore).some((q) => q.fault === 'stall' && q.path.includes(prefix))) {
              clearInterval(poll);
              signalledAt = Date.now();
              process.kill(pid, 'SIGTERM');
            }
          }, 50);
        },
      });
      assert.ok(signalledAt > 0, 'the upload reached the stalled part');
      const took = Date.now() - signalledAt;
      assert.ok(took < 10_000, `exited ${took} ms after SIGTERM (the requests themselves would wait 30 s)`);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /SIGTERM received/);
    } finally {
      proxy.clear();
    }
    assert.equal(await s3.multipartUploads(), 0, 'the multipart upload was aborted');
    assert.deepEqual(await s3.keys(prefix), []);
  });

  it('file://: a read-only repository says so (EROFS), not ENOENT', async (t) => {
    const dir = await tempDir('ops-ro-');
    dirs.push(dir);
    const mount = await runCli([], { command: ['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir] });
    if (mount.code !== 0) return t.skip(`cannot mount a read-only tmpfs here: ${mount.stderr.trim()}`);
    try {
      await assert.rejects(backupOf(new FileRepository(path.join(dir, 'repo')), Buffer.from('x'), new Date()), /mounted read-only \(EROFS\)/);
    } finally {
      await runCli([], { command: ['umount', dir] });
    }
  });
});

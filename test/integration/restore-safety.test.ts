import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, rm, stat, symlink, utimes, writeFile, link } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findBackup } from '../../src/backup/catalog.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { restoreKnowledge } from '../../src/restore/knowledge-restore.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { fillAllTypes, startRedis, type TestRedis } from '../helpers/redis.js';
import { sealedKnowledgeArchive, type ArchiveHeader } from '../helpers/tamper.js';

/** A listing of a tree that tar and sha256sum would agree on: names, types, modes, sizes, content. */
const listing = (dir: string) =>
  execFileSync('bash', ['-c', `cd "${dir}" && find . -printf '%p %y %m %s %n\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`], { encoding: 'utf8' });

/** A sealed hostile archive written into a file repository, and its backup entry. */
async function sealedArchive(repoDir: string, headers: ArchiveHeader[], entries: unknown[] = []) {
  const { payload, manifest } = await sealedKnowledgeArchive(headers, { entries });
  const dir = path.join(repoDir, 'knowledge', 'kb', '20260101T000000Z');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'knowledge.tar.zst'), payload);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  const repo = new FileRepository(repoDir);
  return { repo, entry: await findBackup(repo, 'knowledge', 'kb', 'latest') };
}

describe('restores that cannot hurt: hostile archives, swapped payloads, in-place repair', () => {
  let work: string;
  before(async () => {
    work = await tempDir('ops-restore-safety-');
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('a symlink entry followed by a directory of the same name changes nothing outside the target', async () => {
    const outside = path.join(work, 'outside');
    await mkdir(outside, { mode: 0o700 });
    await utimes(outside, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    const before = await stat(outside);
    const { repo, entry } = await sealedArchive(path.join(work, 'repo-dir-over-link'), [
      { name: 'x', type: 'symlink', linkname: outside },
      { name: 'x', type: 'directory', mode: 0o777 },
    ]);
    const target = path.join(work, 'target-dir-over-link');
    await assert.rejects(restoreKnowledge(entry, target, {}, { repo }), /"x" rejected: appears twice in the archive/);
    const afterStat = await stat(outside);
    assert.equal(afterStat.mode & 0o7777, 0o700, 'mode of the symlink target unchanged');
    assert.equal(afterStat.mtimeMs, before.mtimeMs, 'time of the symlink target unchanged');
    await assert.rejects(stat(target), 'the target this restore created is gone again');
  });

  it('a symlink already in a confirmed target is replaced, never written through', async () => {
    const outside = path.join(work, 'outside2');
    await mkdir(outside);
    const target = path.join(work, 'target-existing-link');
    await mkdir(target);
    await symlink(outside, path.join(target, 'docs'));
    const { repo, entry } = await sealedArchive(path.join(work, 'repo-existing-link'), [
      { name: 'docs', type: 'directory' },
      { name: 'docs/faq.md', type: 'file', size: 1, mode: 0o644 },
    ], [{ path: 'docs', type: 'directory', mode: 0o755, size: 0 }, { path: 'docs/faq.md', type: 'file', mode: 0o644, size: 1, sha256: createHash('sha256').update('x').digest('hex') }]);
    await restoreKnowledge(entry, target, { confirm: target }, { repo });
    assert.deepEqual(await readdir(outside), [], 'nothing written through the old symlink');
    assert.equal((await lstat(path.join(target, 'docs'))).isDirectory(), true);
    assert.equal(await readFile(path.join(target, 'docs', 'faq.md'), 'utf8'), 'x');
  });

  describe('real backups', () => {
    let src: string;
    let cfg: string;
    let backupRun: { stdout: string; stderr: string };
    before(async () => {
      src = path.join(work, 'kb');
      await mkdir(path.join(src, 'docs', 'empty'), { recursive: true });
      await writeFile(path.join(src, 'docs', 'faq.md'), '# FAQ\nanswers\n');
      await writeFile(path.join(src, 'a\\b'), 'a backslash is part of the name');
      await writeFile(path.join(src, 'C:name'), 'so is a colon');
      await writeFile(path.join(src, 'big.txt'), 'y'.repeat(300_000));
      await link(path.join(src, 'big.txt'), path.join(src, 'docs', 'big-again.txt'));
      await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\n');
      await chmod(path.join(src, 'run.sh'), 0o750);
      await symlink('docs/faq.md', path.join(src, 'faq-link'));
      execFileSync('mkfifo', [path.join(src, 'a-fifo')]);
      cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, knowledge: [{ name: 'kb', path: src }] });
      const b = await runCli(['--config', cfg, '--json', 'backup', 'knowledge']);
      assert.equal(b.code, 0, b.stderr);
      backupRun = b;
    });

    it('a FIFO is not data: the backup names it in its result, on stderr and in the manifest', async () => {
      const result = (JSON.parse(backupRun.stdout) as { results: { skipped?: string[] }[] }).results[0]!;
      assert.deepEqual(result.skipped, ['a-fifo (fifo)']);
      assert.match(backupRun.stderr, /1 entries not backed up \(not regular data\): a-fifo \(fifo\)/);
      const entry = await findBackup(new FileRepository(path.join(work, 'repo')), 'knowledge', 'kb', 'latest');
      assert.deepEqual((entry.manifest!.details as { skipped: string[] }).skipped, ['a-fifo (fifo)']);
    });

    it('every legal POSIX name comes back exactly, hard links as links, GNU tar reading the same archive agrees', async () => {
      const dest = path.join(work, 'restored');
      const r = await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest]);
      assert.equal(r.code, 0, r.stderr);
      await rm(path.join(src, 'a-fifo'));
      try {
        assert.equal(listing(dest), listing(src));
        assert.equal(await readFile(path.join(dest, 'a\\b'), 'utf8'), 'a backslash is part of the name');
        assert.equal((await stat(path.join(dest, 'big.txt'))).ino, (await stat(path.join(dest, 'docs', 'big-again.txt'))).ino, 'one file, two names');
        // GNU tar on the decoded payload makes the same tree.
        const entry = await findBackup(new FileRepository(path.join(work, 'repo')), 'knowledge', 'kb', 'latest');
        const gnu = path.join(work, 'gnu-tar');
        await mkdir(gnu);
        execFileSync('bash', ['-c', `zstd -dc "${path.join(work, 'repo', entry.manifest!.payload.key)}" | tar -x -C "${gnu}"`]);
        assert.equal(listing(gnu), listing(dest));
      } finally {
        execFileSync('mkfifo', [path.join(src, 'a-fifo')]);
      }
    });

    it('a damaged payload of the right size fails before the target changes; the retry is not refused as "not empty"', async () => {
      const repoDir = path.join(work, 'repo');
      const entry = await findBackup(new FileRepository(repoDir), 'knowledge', 'kb', 'latest');
      const payloadFile = path.join(repoDir, entry.manifest!.payload.key);
      const good = await readFile(payloadFile);
      // Same size, other bytes from 60 % on (a size mismatch is already BROKEN in the
      // listing): only the checksum can tell, and it is known only at the end.
      const bad = Buffer.from(good);
      for (let i = Math.floor(bad.length * 0.6); i < bad.length - 8; i += 7) bad[i] = bad[i]! ^ 0x5a;
      await writeFile(payloadFile, bad);
      const dest = path.join(work, 'swap-target');
      await mkdir(dest);
      try {
        const failed = await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest]);
        assert.equal(failed.code, 2, failed.stderr);
        assert.deepEqual(await readdir(dest), [], 'nothing of the wrong backup landed');
      } finally {
        await writeFile(payloadFile, good);
      }
      const retry = await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest]);
      assert.equal(retry.code, 0, retry.stderr);
    });

    it('in-place repair with --confirm: changed, missing and extra files; the target ends equal to the backup', async () => {
      const dest = path.join(work, 'repair');
      assert.equal((await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest])).code, 0);
      await writeFile(path.join(dest, 'docs', 'faq.md'), 'damaged');
      await rm(path.join(dest, 'run.sh'));
      await writeFile(path.join(dest, 'stray.txt'), 'not in the backup');
      // A mount point's lost+found is the file system's, not the knowledge base's.
      await mkdir(path.join(dest, 'lost+found'));
      const r = await runCli(['--config', cfg, '--json', 'restore', 'knowledge', 'latest', '--target', dest, '--confirm', dest]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await stat(path.join(dest, 'lost+found'))).isDirectory(), 'lost+found kept');
      await rm(path.join(dest, 'lost+found'), { recursive: true });
      await rm(path.join(src, 'a-fifo'));
      try {
        assert.equal(listing(dest), listing(src));
      } finally {
        execFileSync('mkfifo', [path.join(src, 'a-fifo')]);
      }
      assert.deepEqual((await readdir(dest)).filter((n) => n.startsWith('.ops-')), [], 'no working directory left behind');
    });
  });

  describe('Redis', () => {
    const servers: TestRedis[] = [];
    after(async () => {
      for (const s of servers) await s.stop();
    });
    it('a damaged logical payload is refused before the first key is written', async () => {
      const a = await startRedis();
      const target = await startRedis();
      servers.push(a, target);
      await fillAllTypes(a.client(0));
      // 30 MB that does not compress: far more than the stream buffers hold, so a writer
      // that waits only for the end-of-stream checksum has sent thousands of keys by then.
      for (let i = 0; i < 3_000; i += 100) await a.client(0).mset(...Array.from({ length: 100 }, (_, k) => [`key:${i + k}`, randomBytes(10_000)]).flat());
      const dir = await tempDir('ops-redis-swap-');
      const cfgA = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'r', url: a.url, mode: 'logical' }] });
      assert.equal((await runCli(['--config', cfgA, 'backup', 'redis'])).code, 0);
      const entry = await findBackup(new FileRepository(`${dir}/repo`), 'redis', 'r', 'latest');
      const payloadA = path.join(dir, 'repo', entry.manifest!.payload.key);
      // Same size, bytes changed near the end: the first 90 % decode into thousands of keys.
      const bad = await readFile(payloadA);
      for (let i = Math.floor(bad.length * 0.9); i < bad.length - 8; i += 13) bad[i] = bad[i]! ^ 0x5a;
      await writeFile(payloadA, bad);
      try {
        const r = await runCli(['--config', cfgA, 'restore', 'redis', 'latest', '--target', target.url]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /payload does not match its manifest/);
        assert.equal(await target.client(0).dbsize(), 0, 'not one key of the damaged backup');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});

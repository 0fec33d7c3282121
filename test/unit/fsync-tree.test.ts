import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { flushWhileWritten, fsyncTree } from '../../src/util/fsync.js';
import { tempDir } from '../helpers/cli.js';

// The restore flushes an extracted data directory with this before PostgreSQL starts on it.
describe('fsyncTree (an extracted base backup flushed beside pg_verifybackup)', () => {
  it('flushes every regular file at any depth and opens nothing else: a FIFO in the tree or behind a symbolic link would block an open forever', { timeout: 10_000 }, async () => {
    const dir = await tempDir('ops-fsync-');
    try {
      const outside = await tempDir('ops-fsync-outside-');
      try {
        await mkdir(path.join(dir, 'base', '5'), { recursive: true });
        await mkdir(path.join(dir, 'pg_tblspc'));
        for (const f of ['PG_VERSION', 'base/5/1259', 'base/5/1259_fsm', 'global/pg_control']) {
          await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
          await writeFile(path.join(dir, f), 'x'.repeat(8192));
        }
        execFileSync('mkfifo', [path.join(dir, 'a-fifo'), path.join(outside, 'fifo')]);
        await writeFile(path.join(outside, 'not-ours'), 'y');
        // A tablespace link (pg_tblspc/<oid> -> elsewhere) and a link to a FIFO.
        await symlink(outside, path.join(dir, 'pg_tblspc', '16384'));
        await symlink(path.join(outside, 'fifo'), path.join(dir, 'fifo-link'));
        assert.equal(await fsyncTree(dir), 4);
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('flushWhileWritten: passes while GNU tar extracts 200 files into the tree, then a last pass that counts every one of them', { timeout: 30_000 }, async () => {
    const src = await tempDir('ops-fsync-src-');
    const dst = await tempDir('ops-fsync-dst-');
    try {
      for (let d = 0; d < 10; d += 1) {
        await mkdir(path.join(src, `d${d}`));
        for (let f = 0; f < 20; f += 1) await writeFile(path.join(src, `d${d}`, `f${f}`), Buffer.alloc(256 << 10, d + f));
      }
      const tar = path.join(path.dirname(src), `${path.basename(src)}.tar`);
      execFileSync('tar', ['-c', '-f', tar, '-C', src, '.']);
      const flusher = flushWhileWritten(dst, 5);
      // The tree grows under the passes: early passes see part of it.
      await new Promise<void>((resolve, reject) => {
        const child = spawn('tar', ['-x', '-f', tar, '-C', dst], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
      });
      assert.equal(await flusher.finish(), 200);
      await rm(tar, { force: true });
      // stop(): no last pass, and it returns promptly.
      const second = flushWhileWritten(dst, 60_000);
      await second.stop();
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(dst, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { encodeMany } from '../../src/wal/batch.js';
import { EncodePool } from '../../src/wal/encode-pool.js';
import { decodeWalObject, zstdInProcess } from '../../src/wal/object.js';

// Segments that are partly compressible (as WAL is) and partly not, of the sizes a backlog holds.
function segmentLike(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes, seed);
  randomBytes(bytes / 4).copy(b, bytes / 2);
  return b;
}

describe('the WAL encode pool (a backlog: each file read once, hashed and compressed in a worker thread)', { skip: zstdInProcess ? false : 'Node without zstd of its own: the binary compresses and the pool only hashes' }, () => {
  it('gives the sha256, the size, the first bytes and a zstd frame that GNU zstd decodes to the file, for files of several sizes at once', async () => {
    const work = await tempDir('ops-encode-pool-');
    const pool = new EncodePool(2);
    try {
      // Sizes that force the reused buffer to grow, then shrink back under it.
      const sizes = [1 << 20, 16 << 20, 3 << 20, 17 << 20, 5];
      const files = await Promise.all(
        sizes.map(async (size, i) => {
          const file = path.join(work, `f${i}`);
          await writeFile(file, size < 40 ? Buffer.from('abcde') : segmentLike(size, i + 1));
          return file;
        }),
      );
      const encoded = await Promise.all(files.map((f) => pool.encode(f)));
      for (const [i, e] of encoded.entries()) {
        const content = await readFile(files[i]!);
        assert.equal(e.bytes, content.length);
        assert.equal(e.sha256, createHash('sha256').update(content).digest('hex'));
        assert.ok(e.head.equals(content.subarray(0, 40)), 'the first 40 bytes (or all of a shorter file)');
        const decoded = execFileSync('zstd', ['-d', '-c', '-q'], { input: e.frame, maxBuffer: 64 << 20 });
        assert.ok(decoded.equals(content), `file ${i}: GNU zstd decodes the frame to the file`);
      }
      const hashed = await pool.hash(files[1]!);
      assert.equal(hashed.sha256, encoded[1]!.sha256);
      await assert.rejects(pool.encode(path.join(work, 'absent')), /ENOENT.*absent/);
      // The pool goes on after a failure.
      assert.equal((await pool.encode(files[4]!)).bytes, 5);
    } finally {
      await pool.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('starts a thread only when the work needs one: files one at a time take one thread of four, four at once take four', async () => {
    const work = await tempDir('ops-encode-lazy-');
    const pool = new EncodePool(4);
    try {
      const files = await Promise.all([0, 1, 2, 3].map(async (i) => {
        const file = path.join(work, `f${i}`);
        await writeFile(file, segmentLike(1 << 20, i + 1));
        return file;
      }));
      assert.equal(pool.threads, 0, 'none before the first file');
      for (const f of files) await pool.encode(f);
      assert.equal(pool.threads, 1, 'one at a time (the resident pusher\'s usual load): one thread');
      await Promise.all(files.map((f) => pool.encode(f)));
      assert.equal(pool.threads, 4);
      await Promise.all([...files, ...files].map((f) => pool.encode(f)));
      assert.equal(pool.threads, 4, 'never more than asked for');
    } finally {
      await pool.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('a thread that dies fails the file it held and is replaced: the next file is encoded (the resident pusher keeps one pool for hours)', async () => {
    const work = await tempDir('ops-encode-lost-');
    const pool = new EncodePool(1);
    try {
      const file = path.join(work, 'f');
      await writeFile(file, segmentLike(1 << 20, 3));
      await pool.encode(file);
      // The thread ended from outside, as a crash would end it (the pool's own field: no API kills a thread).
      const { slots } = pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] };
      await slots[0]!.worker.terminate();
      const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10_000).unref())]);
      const again = await within(pool.encode(file));
      assert.equal(again.bytes, 1 << 20);
      assert.equal(pool.threads, 1, 'the dead thread replaced, not added to');
    } finally {
      await pool.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('encodeMany hands out whole objects that decode and verify, and reports a vanished file without stopping the rest', async () => {
    const work = await tempDir('ops-encode-many-');
    try {
      const names = Array.from({ length: 7 }, (_, i) => `00000001000000000000001${i}`);
      for (const [i, n] of names.entries()) await writeFile(path.join(work, n), segmentLike(16 << 20, i + 7));
      const seen = new Map<string, Buffer>();
      const failed: string[] = [];
      await rm(path.join(work, names[3]!));
      await encodeMany(
        names.map((n) => path.join(work, n)),
        { parallel: 2, at: new Date('2026-12-05T00:00:00Z') },
        async (e) => {
          // Read here, while the object is ours: once this resolves, its memory may be freed.
          const object = Array.isArray(e.object) ? Buffer.concat(e.object) : (e.object as Buffer);
          const { content, header } = await decodeWalObject(e.file, object);
          assert.equal(header.file, e.file);
          seen.set(e.file, content);
        },
        (file) => failed.push(file),
      );
      assert.deepEqual(failed, [names[3]]);
      assert.deepEqual([...seen.keys()].sort(), names.filter((_, i) => i !== 3));
      for (const [n, content] of seen) assert.ok(content.equals(await readFile(path.join(work, n))), n);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

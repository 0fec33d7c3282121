import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { packTree, type FileRecord } from '../../src/knowledge/archive.js';
import type { SourceEntry } from '../../src/knowledge/walk.js';

async function* entries(...list: SourceEntry[]): AsyncGenerator<SourceEntry> {
  yield* list;
}

/** Drain the tar stream and report how packing ended. */
async function pack(list: SourceEntry[]): Promise<{ records: FileRecord[]; error?: Error }> {
  const records: FileRecord[] = [];
  const { stream, done } = packTree(entries(...list), records);
  stream.resume();
  stream.on('error', () => undefined);
  try {
    await done;
    return { records };
  } catch (error) {
    return { records, error: error as Error };
  }
}

const base = { type: 'file' as const, mode: 0o644, mtime: new Date(0) };

describe('knowledge archive: a file that changes size while it is read is refused', () => {
  it('small file read whole: refused before its tar entry is written', async () => {
    const { records, error } = await pack([{ ...base, path: 'a.txt', size: 5, read: async () => Buffer.from('grown!'), open: async () => Readable.from([Buffer.from('grown!')]) }]);
    assert.match(error?.message ?? '', /a\.txt changed size while being read \(5 -> 6 bytes\)/);
    assert.deepEqual(records, []);
  });

  it('large file streamed: refused when the bytes read differ from the size listed', async () => {
    const size = 5 << 20;
    const { records, error } = await pack([{ ...base, path: 'big.bin', size, open: async () => Readable.from([Buffer.alloc(size - 1)]) }]);
    assert.match(error?.message ?? '', /big\.bin changed size while being read \(5242880 -> 5242879 bytes\)/);
    assert.deepEqual(records, []);
  });

  it('unchanged files are recorded with their sha256, either way they are read', async () => {
    const { records, error } = await pack([
      { ...base, path: 'small.txt', size: 3, read: async () => Buffer.from('abc'), open: async () => Readable.from([Buffer.from('abc')]) },
      { ...base, path: 'streamed.txt', size: 3, open: async () => Readable.from([Buffer.from('abc')]) },
    ]);
    assert.equal(error, undefined);
    const sha = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    assert.deepEqual(records.map((r) => [r.path, r.size, r.sha256]), [['small.txt', 3, sha], ['streamed.txt', 3, sha]]);
  });
});

describe('knowledge archive: stopped while nobody reads (a signal or a failed upload mid-backup)', () => {
  for (const kind of ['small files read whole', 'large files streamed'] as const) {
    it(`${kind}: packing ends at once with the reason, instead of waiting forever for a reader`, async () => {
      const records: FileRecord[] = [];
      const size = kind === 'small files read whole' ? 64 * 1024 : 6 << 20;
      const list = Array.from({ length: 64 }, (_, i) => ({ ...base, path: `f${i}.bin`, size, read: async () => Buffer.alloc(size, i), open: async () => Readable.from([Buffer.alloc(size, i)]) }));
      const { stream, done, stop } = packTree(entries(...list), records);
      stream.on('error', () => undefined);
      // Nothing reads: the pack fills and the producer waits on its next entry.
      await new Promise((r) => setTimeout(r, 200));
      const settled = done.then(
        () => 'finished',
        (e: Error) => e.message,
      );
      stop(new Error('stopped by the test'));
      const outcome = await Promise.race([settled, new Promise((r) => setTimeout(() => r('still waiting after 2 s'), 2000))]);
      assert.equal(outcome, 'stopped by the test');
      assert.ok(records.length < list.length, `stopped part-way (${records.length} of ${list.length})`);
    });
  }
});

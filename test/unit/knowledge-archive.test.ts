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

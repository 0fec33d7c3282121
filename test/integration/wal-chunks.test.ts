import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { openRepository } from '../../src/repository/open.js';
import type { Repository } from '../../src/repository/repository.js';
import { assembleChunks, chunkKey, chunkPrefix, contiguousEnd, parseChunks, putChunk } from '../../src/wal/chunks.js';
import { WalCorruptError } from '../../src/wal/errors.js';

const SEG = '000000010000000000000007';
const SIZE = 16 * 1024 * 1024;

/**
 * The chunks `wal receive` uploads are data written by someone else by the time a restore
 * reads them: a hole, a flipped byte or a chunk whose name lies about its range must stop
 * recovery (restore_command's fatal status), never end it early as "not archived" (exit 1),
 * which PostgreSQL would take as the end of WAL and promote with committed work missing.
 */
describe('wal chunks: assembled exactly, zero-filled to the segment size; damage stops recovery (file:// repository, the CLI as shipped)', () => {
  let dir: string;
  let repo: Repository;
  let cfg: string;
  const content = Buffer.alloc(300_000);
  before(async () => {
    dir = await tempDir('ops-wal-chunks-');
    repo = openRepository(`file://${path.join(dir, 'repo')}`);
    cfg = await writeConfig(dir, { repository: { url: `file://${path.join(dir, 'repo')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres', pitr: { enabled: true } }] });
    for (let i = 0; i < content.length; i += 1) content[i] = (i * 7 + 3) % 251;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('three chunks in order (one overlapping the last): the segment is their bytes then zeros, 16 MiB; wal fetch exits 0 with it', async () => {
    const at = new Date();
    await putChunk(repo, 'main', SEG, 0, content.subarray(0, 100_000), SIZE, at);
    await putChunk(repo, 'main', SEG, 100_000, content.subarray(100_000, 250_000), SIZE, at);
    // A restarted receiver may upload a range again from an earlier offset: same bytes, another name.
    await putChunk(repo, 'main', SEG, 200_000, content.subarray(200_000, 300_000), SIZE, at);
    const chunks = parseChunks('main', await repo.list(chunkPrefix('main')));
    assert.deepEqual(chunks.map((c) => [c.offset, c.end]), [[0, 100_000], [100_000, 250_000], [200_000, 300_000]]);
    assert.equal(contiguousEnd(chunks), 300_000);
    const dest = path.join(dir, 'out');
    assert.deepEqual(await assembleChunks(repo, 'main', SEG, dest), { bytes: 300_000, segmentBytes: SIZE });
    const got = await readFile(dest);
    assert.equal(got.length, SIZE);
    assert.ok(got.subarray(0, 300_000).equals(content));
    assert.ok(got.subarray(300_000).every((b) => b === 0));
    const r = await runCli(['--config', cfg, 'wal', 'fetch', SEG, path.join(dir, 'fetched'), '--name', 'main', '--ahead', '0']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok((await readFile(path.join(dir, 'fetched'))).equals(got));
  });

  it('a flipped byte in a chunk: refused (damaged), nothing written; wal fetch exits 255, which aborts recovery', async () => {
    const key = chunkKey('main', SEG, 100_000, 250_000);
    const file = path.join(dir, 'repo', key);
    const original = await readFile(file);
    const bad = Buffer.from(original);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
    await writeFile(file, bad);
    try {
      await assert.rejects(assembleChunks(repo, 'main', SEG, path.join(dir, 'out2')), WalCorruptError);
      await assert.rejects(readFile(path.join(dir, 'out2')), /ENOENT/);
      const r = await runCli(['--config', cfg, 'wal', 'fetch', SEG, path.join(dir, 'fetched2'), '--name', 'main', '--ahead', '0']);
      assert.equal(r.code, 255, r.stdout + r.stderr);
      assert.match(r.stderr, /damaged/);
    } finally {
      await writeFile(file, original);
    }
  });

  it('a hole between chunks: refused naming the missing range, exit 255', async () => {
    const seg = '000000010000000000000008';
    await putChunk(repo, 'main', seg, 0, content.subarray(0, 1000), SIZE, new Date());
    await putChunk(repo, 'main', seg, 2000, content.subarray(2000, 3000), SIZE, new Date());
    await assert.rejects(assembleChunks(repo, 'main', seg, path.join(dir, 'out3')), /bytes 000003E8-00000BB8 missing between chunks/);
    const r = await runCli(['--config', cfg, 'wal', 'fetch', seg, path.join(dir, 'fetched3'), '--name', 'main', '--ahead', '0']);
    assert.equal(r.code, 255, r.stdout + r.stderr);
  });

  it('a chunk whose name claims another range than its header: refused', async () => {
    const seg = '000000010000000000000009';
    await putChunk(repo, 'main', seg, 0, content.subarray(0, 1000), SIZE, new Date());
    const from = path.join(dir, 'repo', chunkKey('main', seg, 0, 1000));
    await writeFile(path.join(dir, 'repo', chunkKey('main', seg, 1000, 2000)), await readFile(from));
    await assert.rejects(assembleChunks(repo, 'main', seg, path.join(dir, 'out4')), WalCorruptError);
  });

  it('a segment with no chunks and not archived: "not in the archive", exit 1 (the archive exists)', async () => {
    const r = await runCli(['--config', cfg, 'wal', 'fetch', '00000001000000000000000A', path.join(dir, 'fetched5'), '--name', 'main', '--ahead', '0']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
  });
});

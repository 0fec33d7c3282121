import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { baseTarReader, type BaseTarReader } from '../../src/backup/base-tar.js';

/**
 * The reader of a base backup's compressed tar (what level 2 of a base backup sees): zstd
 * decodes into a FIFO that a worker thread reads. Judged against GNU tar's own listing and
 * against the event-loop reader, and attacked where a thread and a FIFO can go wrong: a
 * writer that never opens, a reader that stops, a kill mid-stream, a tar that fails the scan.
 */
describe('base backup tar reader: zstd into a FIFO read by a worker thread (real zstd, GNU tar)', () => {
  let dir: string;
  let tmp: string;
  let savedTmp: string | undefined;
  let tar: Buffer;
  let payload: Buffer;
  before(async () => {
    dir = await tempDir('ops-base-tar-reader-');
    // The FIFO's directory is made under TMPDIR: a private one here, so the test can see it.
    tmp = path.join(dir, 'tmp');
    await mkdir(tmp);
    savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'base', '1'), { recursive: true });
    await writeFile(path.join(src, 'backup_label'), 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n');
    await writeFile(path.join(src, 'backup_manifest'), JSON.stringify({ Files: [] }));
    // Members larger than the thread's 1 MiB buffer, of odd sizes, and a name too long for
    // ustar's 100-byte field (held in its prefix).
    await writeFile(path.join(src, 'base', '1', '16384'), Buffer.alloc(3 * (1 << 20) + 7, 1));
    await writeFile(path.join(src, 'base', '1', '16385'), Buffer.alloc(511, 2));
    await writeFile(path.join(src, 'base', '1', '16386'), Buffer.alloc(0));
    const deep = path.join('base', 'x'.repeat(60), 'y'.repeat(60));
    await mkdir(path.join(src, deep), { recursive: true });
    await writeFile(path.join(src, deep, 'z'.repeat(30)), Buffer.alloc(1025, 3));
    tar = execFileSync('tar', ['-c', '-f', '-', '--format=ustar', '-C', src, 'backup_label', 'base', 'backup_manifest'], { maxBuffer: 64 << 20 });
    payload = execFileSync('zstd', ['-q', '-c', '-1'], { input: tar, maxBuffer: 64 << 20 });
  });
  after(async () => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** GNU tar's listing of the regular files: name -> size. */
  const gnuSizes = (bytes: Buffer) =>
    new Map(
      execFileSync('tar', ['-tvf', '-'], { input: bytes, maxBuffer: 64 << 20 })
        .toString()
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('-'))
        .map((l) => {
          const f = l.split(/\s+/);
          return [f.slice(5).join(' '), Number(f[2])] as [string, number];
        }),
    );
  const fifoDirs = async () => (await readdir(tmp)).filter((n) => n.startsWith('ops-base-tar-'));
  /** Processes this test started that are still there (zstd, or the shell that opens the FIFO for it). */
  const zstdChildren = () =>
    spawnSync('ps', ['--ppid', String(process.pid), '-o', 'args='])
      .stdout.toString()
      .split('\n')
      .filter((l) => /^(zstd|sh) /.test(l))
      .join('\n');
  /** Settles within `ms`, or fails the test: a hang is the failure these tests look for. */
  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms).unref())]);
  const feed = (reader: BaseTarReader, bytes: Buffer) => pipeline(Readable.from([bytes]), reader.input);

  it('reads every member at the size GNU tar lists, as the event-loop reader does, through a private FIFO it removes after', async () => {
    const reader = baseTarReader('zstd');
    // The FIFO exists while the tar is read: in a directory of its own, 0700, the FIFO 0600.
    const [made] = await fifoDirs();
    assert.ok(made, 'no FIFO directory under TMPDIR: the tar was not read through a thread');
    assert.equal((await stat(path.join(tmp, made))).mode & 0o777, 0o700);
    const fifo = await stat(path.join(tmp, made, 'tar'));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.mode & 0o777, 0o600);
    await feed(reader, payload);
    const facts = await within(reader.facts, 30_000, 'thread reader');
    const loop = baseTarReader('zstd', { thread: false });
    await feed(loop, payload);
    const loopFacts = await loop.facts;
    const gnu = gnuSizes(tar);
    assert.equal(gnu.size, 6);
    assert.deepEqual(new Map([...facts.sizes].sort()), new Map([...gnu].sort()));
    assert.deepEqual(new Map([...loopFacts.sizes].sort()), new Map([...gnu].sort()));
    assert.deepEqual(facts.texts, loopFacts.texts);
    assert.match(facts.texts.get('backup_label') ?? '', /^START WAL LOCATION: 0\/2000028/);
    assert.deepEqual(await fifoDirs(), []);
    assert.equal(zstdChildren(), '');
  });

  it('bytes that are not zstd: rejected with zstd\'s failure, the thread released (it never saw a writer), nothing left', async () => {
    const reader = baseTarReader('zstd');
    await feed(reader, Buffer.alloc(4096, 0x41)).catch(() => undefined);
    await assert.rejects(within(reader.facts, 15_000, 'thread reader on garbage'), /zstd exited with 1/);
    assert.deepEqual(await fifoDirs(), []);
    assert.equal(zstdChildren(), '');
  });

  it('a compressed stream cut short: rejected, as a cut tar', async () => {
    const reader = baseTarReader('zstd');
    await feed(reader, payload.subarray(0, Math.floor(payload.length / 2)));
    await assert.rejects(within(reader.facts, 15_000, 'thread reader on a cut stream'));
    assert.deepEqual(await fifoDirs(), []);
  });

  it('a damaged tar header: TarScanError from the thread, and zstd is read to its end meanwhile (the input never stalls)', async () => {
    const bad = Buffer.from(tar);
    // The second member's header: after backup_label's header and its one data block.
    bad[1024 + 10] = bad[1024 + 10]! ^ 0xff;
    const reader = baseTarReader('zstd');
    await within(feed(reader, execFileSync('zstd', ['-q', '-c', '-1'], { input: bad, maxBuffer: 64 << 20 })), 15_000, 'writing the payload');
    await assert.rejects(within(reader.facts, 15_000, 'thread reader on a damaged header'), (e: Error) => e.name === 'TarScanError' && /checksum mismatch/.test(e.message));
    assert.deepEqual(await fifoDirs(), []);
  });

  // The race: a kill (or zstd's death) before the thread has opened the FIFO. The thread then
  // waits in its open for a writer that will never come, and a thread in a system call cannot
  // be terminated: the reading never settled and the process could not exit.
  for (const [when, wait] of [['before the thread has opened the FIFO', 0], ['while the thread reads', 300]] as const) {
    it(`killed ${when} (a backup that failed or was stopped): settles, zstd gone, FIFO removed`, async () => {
      const reader = baseTarReader('zstd');
      reader.input.on('error', () => undefined);
      reader.input.write(payload.subarray(0, Math.floor(payload.length / 2)));
      if (wait) await new Promise((r) => setTimeout(r, wait));
      reader.kill();
      await assert.rejects(within(reader.facts, 15_000, 'thread reader after kill'));
      assert.deepEqual(await fifoDirs(), []);
      assert.equal(zstdChildren(), '');
    });
  }

  it('a thread that dies without reading: zstd is killed, so whoever writes the payload is not left waiting on a full pipe', async () => {
    const dead = path.join(dir, 'dead-worker.mjs');
    await writeFile(dead, 'process.exit(3);\n');
    const reader = baseTarReader('zstd', { workerFile: dead });
    // 16 MiB: far more than the pipe into the shell (which waits to open the FIFO for zstd) holds.
    const noise = Buffer.alloc(16 << 20, 7);
    await within(feed(reader, noise).catch(() => undefined), 15_000, 'writing into a reader whose thread died');
    await assert.rejects(within(reader.facts, 15_000, 'dead thread'), /tar reading thread exited \(3\)/);
    assert.deepEqual(await fifoDirs(), []);
    assert.equal(zstdChildren(), '');
  });
});

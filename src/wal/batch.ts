import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toolPath } from '../process/tools.js';
import { HashPool } from './hash-pool.js';
import { encodeWalFile, fileIdentity, walObject, zstdInProcess, type WalHeader } from './object.js';

/**
 * Encoding a backlog of WAL files at the speed of the machine. Per file, a push costs a
 * sha256 of 16 MiB and a zstd of it; done one file at a time from one process, the hash
 * runs on the event loop (serialised: 1.6 s for 200 segments here) and each zstd process
 * is forked from a ~100 MB Node (4 ms each). So a backlog is hashed in worker threads and
 * compressed by a few zstd processes that take many files each (`--output-dir-flat`):
 * 200 segments went from 5.9 s to the figures in doc/performance.md.
 */
export interface Encoded {
  file: string;
  object: Buffer;
  header: WalHeader;
}

/** One zstd process for many files, each into `<dir>/<name>.zst`. */
function zstdMany(files: string[], dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath('zstd'), ['-1', '-q', '-f', '-T1', '--no-progress', '--output-dir-flat', dir, '--', ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited with ${code}: ${err.trim()}`))));
  });
}

/**
 * Encodes `paths` (WAL files of one directory) and calls `onEncoded` for each as soon as
 * its group is done, in groups of `groupSize`, `parallel` groups at a time. A file that
 * fails is reported through `onError` and the others go on. Where Node has zstd itself
 * (24+), files are encoded one by one in-process instead (no processes to fork).
 */
export async function encodeMany(paths: string[], options: { parallel: number; at: Date; groupSize?: number; tmpRoot?: string }, onEncoded: (e: Encoded) => Promise<void>, onError: (file: string, error: Error) => void): Promise<void> {
  const parallel = Math.max(1, Math.min(options.parallel, os.availableParallelism?.() ?? os.cpus().length));
  if (paths.length <= 1 || zstdInProcess) {
    const queue = [...paths];
    const worker = async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
        const file = path.basename(p);
        try {
          const { object, header } = await encodeWalFile(file, p, options.at);
          await onEncoded({ file, object, header });
        } catch (error) {
          onError(file, error as Error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, paths.length) }, worker));
    return;
  }
  const dir = await mkdtemp(path.join(options.tmpRoot ?? os.tmpdir(), 'ops-wal-batch-'));
  const pool = new HashPool(parallel);
  try {
    const groupSize = options.groupSize ?? Math.max(1, Math.ceil(paths.length / (parallel * 4)));
    const groups: string[][] = [];
    for (let i = 0; i < paths.length; i += groupSize) groups.push(paths.slice(i, i + groupSize));
    const writes: Promise<void>[] = [];
    const work = async () => {
      for (let group = groups.shift(); group !== undefined; group = groups.shift()) {
        const before = await Promise.all(group.map((p) => fileIdentity(p).catch(() => undefined)));
        const present = group.filter((_, i) => before[i] !== undefined);
        for (const [i, p] of group.entries()) if (before[i] === undefined) onError(path.basename(p), new Error(`${p} is not there`));
        const hashes = present.map((p) => pool.hash(p));
        for (const h of hashes) h.catch(() => undefined);
        let compressed: Error | undefined;
        await zstdMany(present, dir).catch((e: Error) => (compressed = e));
        // Stored while this worker's zstd takes the next group: fsyncs and compression overlap.
        writes.push(
          (async () => {
            for (const [i, p] of present.entries()) {
              const file = path.basename(p);
              const out = path.join(dir, `${file}.zst`);
              try {
                if (compressed) throw compressed;
                const { sha256, bytes } = await hashes[i]!;
                if ((await fileIdentity(p)) !== before[group.indexOf(p)]) throw new Error(`${p} changed while it was being archived`);
                const header: WalHeader = { format: 'ops-wal/1', file, bytes, sha256, codec: 'zstd', archivedAt: options.at.toISOString() };
                await onEncoded({ file, object: walObject(header, [await readFile(out)]), header });
              } catch (error) {
                onError(file, error as Error);
              } finally {
                await rm(out, { force: true });
              }
            }
          })(),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, groups.length) }, work));
    await Promise.all(writes);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';
import { forEachLimit } from '../util/concurrency.js';
import { EncodePool } from './encode-pool.js';
import { encodeWalFile, encodeWalFileWhole, fileIdentity, systemIdFrom, walFileSystemId, walHeader, walObject, walObjectParts, zstdInProcess, type WalHeader } from './object.js';

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
  /** Whole, or as parts written in order. */
  object: Buffer | readonly Buffer[];
  header: WalHeader;
}

/**
 * Frees a stored frame's memory now (its ArrayBuffer detached), not at the garbage collector's
 * next look: the main thread allocates little else, so 6-8 MB frames piled up between
 * collections. Only after `onEncoded` resolved: the object is stored and nothing reads it again.
 */
function release(frame: Buffer): void {
  (frame.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer?.(0);
}

/** `filePath` encoded in `pool`, handed to `store`, then its frame freed (the backlog's path and the resident pusher's). */
export async function storePooled(pool: EncodePool, filePath: string, at: Date, store: (e: Encoded) => Promise<unknown>): Promise<void> {
  const file = path.basename(filePath);
  const e = await pool.encode(filePath);
  const header = walHeader(file, e.bytes, e.sha256, at, systemIdFrom(file, e.head, e.bytes));
  await store({ file, object: walObjectParts(header, [e.frame]), header });
  release(e.frame);
}

/** One zstd process for many files, each into `<dir>/<name>.zst`. */
const zstdMany = (files: string[], dir: string) => startTool('zstd', toolPath('zstd'), ['-1', '-q', '-f', '-T1', '--no-progress', '--output-dir-flat', dir, '--', ...files], { stdout: 'ignore' }).done;

/**
 * Encodes `paths` (WAL files of one directory) and calls `onEncoded` for each as soon as
 * its group is done, in groups of `groupSize`, `parallel` groups at a time. A file that
 * fails is reported through `onError` and the others go on. Where Node has zstd itself
 * (24+), worker threads encode whole files instead (no processes to fork; encode-pool.ts).
 * An object's memory may be freed once `onEncoded` resolved: it must not be kept.
 */
export async function encodeMany(paths: string[], options: { parallel: number; at: Date; groupSize?: number; tmpRoot?: string }, onEncoded: (e: Encoded) => Promise<void>, onError: (file: string, error: Error) => void): Promise<void> {
  const parallel = Math.max(1, Math.min(options.parallel, os.availableParallelism?.() ?? os.cpus().length));
  if (paths.length === 0) return;
  if (paths.length === 1) {
    const file = path.basename(paths[0]!);
    try {
      // Where Node has zstd, read once into memory and compressed from there (encodeWalFileWhole):
      // the streamed encoding reads the file twice and joins the frame: 0.53-0.61 against 0.38-0.42 s of CPU for a whole call here.
      const { object, header } = zstdInProcess ? await encodeWalFileWhole(file, paths[0]!, options.at) : await encodeWalFile(file, paths[0]!, options.at);
      await onEncoded({ file, object, header });
    } catch (error) {
      onError(file, error as Error);
    }
    return;
  }
  if (zstdInProcess) {
    // Each thread reads, hashes and compresses whole files (encode-pool.ts); one file more in
    // flight than threads, so a thread has its next file while a finished one is stored (two
    // per thread: as fast, more CPU and memory; one: 23.5 against 30.1 segments/s).
    const pool = new EncodePool(parallel);
    try {
      await forEachLimit(paths, parallel + 1, async (p) => {
        try {
          await storePooled(pool, p, options.at, onEncoded);
        } catch (error) {
          onError(path.basename(p), error as Error);
        }
      });
    } finally {
      await pool.close();
    }
    return;
  }
  const dir = await mkdtemp(path.join(options.tmpRoot ?? os.tmpdir(), 'ops-wal-batch-'));
  const pool = new EncodePool(parallel);
  try {
    const groupSize = options.groupSize ?? Math.max(1, Math.ceil(paths.length / (parallel * 4)));
    const groups: string[][] = [];
    for (let i = 0; i < paths.length; i += groupSize) groups.push(paths.slice(i, i + groupSize));
    const writes: Promise<void>[] = [];
    await forEachLimit(groups, parallel, async (group) => {
      const stamped = await Promise.all(group.map(async (p) => ({ p, before: await fileIdentity(p).catch(() => undefined) })));
      for (const { p, before } of stamped) if (before === undefined) onError(path.basename(p), new Error(`${p} is not there`));
      const present = stamped.filter((s) => s.before !== undefined).map((s) => ({ ...s, hash: pool.hash(s.p) }));
      for (const { hash } of present) hash.catch(() => undefined);
      let compressed: Error | undefined;
      await zstdMany(present.map((s) => s.p), dir).catch((e: Error) => (compressed = e));
      // Stored while this worker's zstd takes the next group: fsyncs and compression overlap.
      writes.push(
        (async () => {
          for (const { p, before, hash } of present) {
            const file = path.basename(p);
            const out = path.join(dir, `${file}.zst`);
            try {
              if (compressed) throw compressed;
              const { sha256, bytes } = await hash;
              if ((await fileIdentity(p)) !== before) throw new Error(`${p} changed while it was being archived`);
              const header = walHeader(file, bytes, sha256, options.at, await walFileSystemId(file, p));
              await onEncoded({ file, object: walObject(header, [await readFile(out)]), header });
            } catch (error) {
              onError(file, error as Error);
            } finally {
              await rm(out, { force: true });
            }
          }
        })(),
      );
    });
    await Promise.all(writes);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

import { chown, mkdir, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Repository } from '../repository/repository.js';
import { segmentName, walKey } from './names.js';
import { claimSpool } from './spool.js';
import { decodeWalObjectTo } from './object.js';

/**
 * Segments fetched into the spool while recovery runs, by the `opsctl restore --start`
 * process that waits for it anyway: recovery's restore_command calls then find each
 * segment waiting (bin/opsctl hands it over with one mv), and fetching overlaps with
 * replay and with the base backup's extraction, as pgBackRest's asynchronous archive-get
 * does with its own process. Only an optimisation: a segment not here yet is fetched by
 * restore_command itself, and the restore's outcome never depends on this.
 */
export interface Prefetch {
  /** Segments put in the spool so far. */
  readonly fetched: () => number;
  stop(): Promise<void>;
}

export interface PrefetchOptions {
  repo: Repository;
  /** The archive's name (postgres[].name). */
  name: string;
  timeline: number;
  /** Index of the first segment (from the base backup's start LSN). */
  first: number;
  segmentBytes: number;
  spool: string;
  /** Segments waiting unconsumed at most (disk: this many × the segment size). */
  maxWaiting?: number;
  concurrency?: number;
  /** Who runs restore_command (the server's user): the spool and each segment are made theirs. */
  owner?: { uid: number; gid: number };
  /** restore_command's spoolSource: without it, what is fetched here is not believed by restore_command. */
  source?: string;
}

export function startPrefetch(options: PrefetchOptions): Prefetch {
  const maxWaiting = options.maxWaiting ?? 8;
  const concurrency = options.concurrency ?? 2;
  const dir = path.join(options.spool, 'fetch');
  let stopped = false;
  let fetched = 0;
  let next = options.first;
  let end = false;
  let ready: Promise<void> | undefined;
  // Private to restore_command's user, as bin/opsctl and spool.ts require before believing it.
  const prepare = () =>
    (ready ??= (async () => {
      if (options.source) await claimSpool(options.spool, options.source, options.owner);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (options.owner) for (const d of [options.spool, dir]) await chown(d, options.owner.uid, options.owner.gid);
    })());
  const store = async (file: string, object: Buffer) => {
    const tmp = path.join(dir, `.${file}.prefetch`);
    await decodeWalObjectTo(file, object, tmp);
    if (options.owner) await chown(tmp, options.owner.uid, options.owner.gid);
    await rename(tmp, path.join(dir, file));
  };
  const waiting = async () => (await readdir(dir).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).length;
  const worker = async () => {
    while (!stopped && !end) {
      // Recovery consumes them in order; keep at most maxWaiting ahead of it.
      if ((await waiting()) >= maxWaiting) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const index = next;
      next += 1;
      const file = segmentName(options.timeline, index, options.segmentBytes);
      try {
        const object = await options.repo.getBytes(walKey(options.name, file));
        if (!object) {
          end = true; // the archive ends here on this timeline (or recovery moves to another)
          return;
        }
        if (stopped) return;
        await prepare();
        await store(file, object);
        fetched += 1;
      } catch {
        end = true; // restore_command fetches it, and reports what is wrong
        return;
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    fetched: () => fetched,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

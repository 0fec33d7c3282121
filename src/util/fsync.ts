import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimit } from './concurrency.js';

/** A file, or a directory (a rename or link in it is durable only once it is), flushed to disk. */
export async function fsyncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Every regular file under `dir` flushed to disk, `limit` at a time (libuv's pool runs four):
 * the write-back then proceeds in parallel, the disk's queue kept full. Symbolic links are
 * not followed (a tablespace link points outside the tree).
 */
export async function fsyncTree(dir: string, limit = 4): Promise<number> {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) files.push(p);
    }
  };
  await walk(dir);
  await forEachLimit(files, limit, (f) => fsyncPath(f));
  return files.length;
}

/** Flushing a directory tree while another process writes into it; finish() flushes it whole, once more. */
export interface TreeFlusher {
  /** The last pass, after the writer is done: every file flushed (its failure is the caller's). */
  finish(): Promise<number>;
  /** No last pass (the writer failed and the tree is removed). */
  stop(): Promise<void>;
}

/**
 * Passes of fsyncTree over `dir`, one after another with `everyMs` between them, while a
 * writer (tar) fills it: the disk writes the first files back while the next are extracted,
 * so the last pass, once the writer is done, leaves only the newest pages to write. A pass
 * that fails (a file the writer has not finished naming yet) is only an early pass.
 */
export function flushWhileWritten(dir: string, everyMs = 200): TreeFlusher {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      await fsyncTree(dir).catch(() => undefined);
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, everyMs);
        wake = () => (clearTimeout(timer), resolve());
      });
    }
  })();
  const stop = async () => {
    stopped = true;
    wake?.();
    await loop;
  };
  return {
    async finish() {
      await stop();
      return fsyncTree(dir);
    },
    stop,
  };
}

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { HashingStream } from '../util/streams.js';
import type { SourceEntry } from './walk.js';
import { copyInto, toNodeReadable } from './streamx.js';

export interface FileRecord {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  mode: number;
  size: number;
  sha256?: string;
  linkname?: string;
}

/** Files up to this size are read whole; larger ones are streamed. */
const SMALL_FILE = 4 << 20;

/**
 * The tree as one tar stream (PAX headers where names are long or not ASCII), each
 * file's sha256 computed as it is read. `records` is complete once the stream ends.
 */
export function packTree(entries: AsyncIterable<SourceEntry>, records: FileRecord[]): { stream: Readable; done: Promise<void>; stop: (reason: Error) => void } {
  const pack = tar.pack();
  // Stopped (a signal, a failed upload) while an entry waits for a reader that is gone: every
  // wait below also ends on stop, or `done` would never settle and the job's cleanup would
  // hang behind it (seen: SIGTERM mid-upload held a backup for the 90 s backstop).
  let stopWith: (reason: Error) => void = () => undefined;
  let isStopped = false;
  const stopped = new Promise<never>((_, reject) => {
    stopWith = reject;
  });
  stopped.catch(() => undefined);
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped]);
  const done = (async () => {
    try {
      for await (const e of entries) {
        const header = { name: e.type === 'directory' ? `${e.path}/` : e.path, mode: e.mode, mtime: e.mtime, type: e.type, size: e.type === 'file' ? e.size : 0, ...(e.linkname ? { linkname: e.linkname } : {}) };
        const entry = (body?: Buffer) =>
          new Promise<void>((resolve, reject) => {
            const done = (err?: Error | null) => (err ? reject(err) : resolve());
            if (body) pack.entry(header, body, done);
            else pack.entry(header, done);
          });
        if (e.type !== 'file') {
          await guard(entry());
          records.push({ path: e.path, type: e.type, mode: e.mode, size: 0, ...(e.linkname ? { linkname: e.linkname } : {}) });
          continue;
        }
        const sizeUnchanged = (bytes: number) => {
          if (bytes !== e.size) throw new Error(`${e.path} changed size while being read (${e.size} -> ${bytes} bytes)`);
        };
        let written: { bytes: number; sha256: string };
        if (e.read && e.size <= SMALL_FILE) {
          const data = await guard(e.read());
          sizeUnchanged(data.length);
          await guard(entry(data));
          written = { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
        } else {
          const hasher = new HashingStream();
          try {
            await guard(copyInto((await guard(e.open!())).pipe(hasher), pack.entry(header) as never));
          } catch (error) {
            // tar-stream only says "Size mismatch": name the file and both sizes instead.
            sizeUnchanged(hasher.bytes);
            throw error;
          }
          sizeUnchanged(hasher.bytes);
          written = { bytes: hasher.bytes, sha256: hasher.digest() };
        }
        records.push({ path: e.path, type: 'file', mode: e.mode, size: written.bytes, sha256: written.sha256 });
      }
      pack.finalize();
    } catch (error) {
      // Once stopped, the pack is left to be collected: destroying it with entries pending
      // makes tar-stream's internal entry streams emit errors nobody can listen to.
      if (!isStopped) pack.destroy(error as Error);
      throw error;
    }
  })();
  done.catch(() => undefined);
  const stop = (reason: Error) => {
    isStopped = true;
    stopWith(reason);
  };
  return { stream: toNodeReadable(pack as unknown as AsyncIterable<Buffer>), done, stop };
}

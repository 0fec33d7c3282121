import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { HashingStream } from '../util/streams.js';
import type { SourceEntry } from './walk.js';
import { copyInto, toNodeReadable } from './streamx.js';

export interface FileRecord {
  path: string;
  type: 'file' | 'directory' | 'symlink';
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
export function packTree(entries: AsyncIterable<SourceEntry>, records: FileRecord[]): { stream: Readable; done: Promise<void> } {
  const pack = tar.pack();
  const done = (async () => {
    try {
      for await (const e of entries) {
        const header = { name: e.type === 'directory' ? `${e.path}/` : e.path, mode: e.mode, mtime: e.mtime, type: e.type, size: e.type === 'file' ? e.size : 0, ...(e.linkname ? { linkname: e.linkname } : {}) };
        if (e.type !== 'file') {
          await new Promise<void>((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
          records.push({ path: e.path, type: e.type, mode: e.mode, size: 0, ...(e.linkname ? { linkname: e.linkname } : {}) });
          continue;
        }
        if (e.read && e.size <= SMALL_FILE) {
          const data = await e.read();
          if (data.length !== e.size) throw new Error(`${e.path} changed size while being read (${e.size} -> ${data.length} bytes)`);
          const sha256 = createHash('sha256').update(data).digest('hex');
          await new Promise<void>((resolve, reject) => pack.entry(header, data, (err) => (err ? reject(err) : resolve())));
          records.push({ path: e.path, type: 'file', mode: e.mode, size: data.length, sha256 });
          continue;
        }
        const hasher = new HashingStream();
        const sink = pack.entry(header);
        const source = await e.open!();
        await copyInto(source.pipe(hasher), sink as never);
        if (hasher.bytes !== e.size) throw new Error(`${e.path} changed size while being read (${e.size} -> ${hasher.bytes} bytes)`);
        records.push({ path: e.path, type: 'file', mode: e.mode, size: hasher.bytes, sha256: hasher.digest() });
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      throw error;
    }
  })();
  done.catch(() => undefined);
  return { stream: toNodeReadable(pack as unknown as AsyncIterable<Buffer>), done };
}

import type { Writable } from 'node:stream';
import tar from 'tar-stream';
import type { FileRecord } from './archive.js';
import { toNodeWritable } from './streamx.js';

export interface TarEntry {
  path: string;
  type: string;
  mode: number;
  mtime: Date | undefined;
  size: number;
  linkname: string | undefined;
}

/**
 * Reads a tar stream entry by entry; `onEntry` gets each header and an async iterator of
 * the content (files only). Returns a Node Writable to pipe the decoded archive into.
 */
export function readTar(onEntry: (entry: TarEntry, content: AsyncIterable<Buffer>) => Promise<void>): { sink: Writable; done: Promise<void> } {
  const extract = tar.extract();
  let fail!: (e: Error) => void;
  let finish!: () => void;
  const done = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  done.catch(() => undefined);
  extract.on('entry', (header, stream, next) => {
    const entry: TarEntry = {
      path: header.name.replace(/\/$/, ''),
      type: header.type ?? 'file',
      mode: header.mode ?? 0o644,
      mtime: header.mtime,
      size: header.size ?? 0,
      linkname: header.linkname ?? undefined,
    };
    onEntry(entry, stream as unknown as AsyncIterable<Buffer>)
      .then(async () => {
        // Whatever the handler did not read must still be drained for the next header.
        for await (const _ of stream as unknown as AsyncIterable<Buffer>) void _;
        next();
      })
      .catch((e: Error) => {
        fail(e);
        extract.destroy(e);
      });
  });
  extract.on('finish', () => finish());
  extract.on('error', (e: Error) => fail(e));
  return { sink: toNodeWritable(extract as never), done };
}

/** Compare what the archive holds with what the manifest listed. */
export function compareEntries(expected: FileRecord[], seen: FileRecord[]): string[] {
  const problems: string[] = [];
  const byPath = new Map(seen.map((s) => [s.path, s]));
  for (const e of expected) {
    const s = byPath.get(e.path);
    if (!s) problems.push(`${e.path}: missing from the archive`);
    else if (s.type !== e.type) problems.push(`${e.path}: ${s.type}, manifest says ${e.type}`);
    else if (e.type === 'file' && (s.sha256 !== e.sha256 || s.size !== e.size)) problems.push(`${e.path}: sha256/size differ from the manifest`);
    else if ((e.type === 'symlink' || e.type === 'link') && s.linkname !== e.linkname) problems.push(`${e.path}: link target differs`);
    byPath.delete(e.path);
  }
  for (const extra of byPath.keys()) problems.push(`${extra}: in the archive but not in the manifest`);
  return problems;
}

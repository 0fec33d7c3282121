import { mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ObjectInfo, Repository } from '../repository/repository.js';
import { WalCorruptError } from './errors.js';
import { decodeWalObject, sha256, walHeader, walObject, zstdBytes } from './object.js';
import { walPrefix } from './names.js';
import { firstWholeRecordEnd } from './records.js';

/**
 * The segment `wal receive` is writing, uploaded as it grows: one immutable object per
 * upload holding only the bytes new since the last one, under
 *   wal/<name>/chunks/<SEGMENT>/<OFFSET>-<END>.zst     (8 hex digits each, byte offsets)
 * so a listing alone says how far the chunks reach, and nothing is ever overwritten. Each
 * object has the archive's format (OPSWAL1 + header + zstd): its bytes are proven by size
 * and sha256 before use. Once the whole segment is archived its chunks are removed.
 */
export const chunkPrefix = (name: string, segment?: string) => `${walPrefix(name)}chunks/${segment ? `${segment}/` : ''}`;

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
export const chunkId = (segment: string, offset: number, end: number) => `${segment}/${hex8(offset)}-${hex8(end)}`;
export const chunkKey = (name: string, segment: string, offset: number, end: number) => `${chunkPrefix(name)}${chunkId(segment, offset, end)}.zst`;

export interface Chunk {
  key: string;
  segment: string;
  offset: number;
  end: number;
  /** Stored (compressed) bytes. */
  size: number;
  uploadedAt: Date;
}

const CHUNK = /^([0-9A-F]{24})\/([0-9A-F]{8})-([0-9A-F]{8})\.zst$/;

/** The chunks in a listing of `chunkPrefix(name)`, by segment then offset; anything else there is ignored. */
export function parseChunks(name: string, listing: ObjectInfo[]): Chunk[] {
  const prefix = chunkPrefix(name);
  const chunks: Chunk[] = [];
  for (const o of listing) {
    if (!o.key.startsWith(prefix)) continue;
    const m = CHUNK.exec(o.key.slice(prefix.length));
    if (!m) continue;
    const offset = Number.parseInt(m[2]!, 16);
    const end = Number.parseInt(m[3]!, 16);
    if (end > offset) chunks.push({ key: o.key, segment: m[1]!, offset, end, size: o.size, uploadedAt: o.lastModified });
  }
  return chunks.sort((a, b) => a.segment.localeCompare(b.segment) || a.offset - b.offset || a.end - b.end);
}

/** How far the chunks of one segment reach without a hole, from byte 0 (0: none usable). */
export function contiguousEnd(chunks: Chunk[]): number {
  let end = 0;
  for (const c of chunks) {
    if (c.offset > end) break;
    end = Math.max(end, c.end);
  }
  return end;
}

/** Uploads bytes [offset, offset + bytes.length) of `segment` as one chunk; true if written now, false if that exact chunk was there. */
export async function putChunk(repo: Repository, name: string, segment: string, offset: number, bytes: Buffer, segmentBytes: number, at: Date, systemId?: string): Promise<boolean> {
  const end = offset + bytes.length;
  const id = chunkId(segment, offset, end);
  const header = { ...walHeader(id, bytes.length, sha256(bytes), at, systemId), offset, segmentBytes };
  return repo.createExclusive(chunkKey(name, segment, offset, end), walObject(header, await zstdBytes(bytes)));
}

/**
 * The segment as far as its chunks reach, zero-filled to its full size, written to `dest`
 * through a temporary name (fsynced, renamed): what PostgreSQL's recovery reads up to the
 * last whole record, as it reads a .partial file of pg_receivewal. A chunk that does not
 * prove its bytes, or a hole before the last chunk, is damage: refused, nothing written.
 */
export async function assembleChunks(repo: Repository, name: string, segment: string, dest: string): Promise<{ bytes: number; segmentBytes: number } | undefined> {
  const chunks = parseChunks(name, await repo.list(chunkPrefix(name, segment)));
  if (chunks.length === 0) return undefined;
  const end = contiguousEnd(chunks);
  const last = Math.max(...chunks.map((c) => c.end));
  if (end < last) throw new WalCorruptError(`${segment} (streamed chunks)`, `bytes ${hex8(end)}-${hex8(last)} missing between chunks: the chunks after the hole cannot be replayed`);
  let segmentBytes = 0;
  const tmp = `${dest}.ops-chunks-${process.pid}`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    let cursor = 0;
    for (const c of chunks) {
      if (c.end <= cursor) continue;
      const object = await repo.getBytes(c.key);
      if (!object) throw new WalCorruptError(`${segment} (streamed chunks)`, `chunk ${c.key} vanished while read`);
      const { content, header } = await decodeWalObject(chunkId(segment, c.offset, c.end), object);
      const h = header as typeof header & { offset?: number; segmentBytes?: number };
      if (h.offset !== c.offset || content.length !== c.end - c.offset) throw new WalCorruptError(`${segment} (streamed chunks)`, `chunk ${c.key} holds bytes ${h.offset ?? '?'}+${content.length}, its name says ${c.offset}-${c.end}`);
      segmentBytes = h.segmentBytes ?? segmentBytes;
      await handle.write(content, cursor - c.offset, c.end - cursor, cursor);
      cursor = c.end;
    }
    if (!segmentBytes || segmentBytes < cursor) throw new WalCorruptError(`${segment} (streamed chunks)`, `segment size ${segmentBytes} unknown or below the chunks' end ${cursor}`);
    await handle.truncate(segmentBytes);
    await handle.sync();
    await handle.close();
    await rename(tmp, dest);
    return { bytes: cursor, segmentBytes };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * What a streamed segment's chunks hold now: none (gone: archived whole meanwhile, or
 * removed), or how far they reach and where the first whole record that starts in the
 * segment ends (undefined: none does). Recovery "to the end" that replayed nothing of a
 * segment whose chunks hold a whole record stopped early.
 */
export async function streamedRecords(repo: Repository, name: string, segment: string): Promise<{ bytes: number; recordEnd: number | undefined } | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ops-chunk-check-'));
  try {
    const got = await assembleChunks(repo, name, segment, path.join(dir, segment));
    if (!got) return undefined;
    return { bytes: got.bytes, recordEnd: firstWholeRecordEnd(await readFile(path.join(dir, segment)), got.bytes) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

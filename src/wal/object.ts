import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { decoder } from '../backup/codec.js';
import { startTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';
import { discard, HashingStream, sha256Of } from '../util/streams.js';
import { WalCorruptError } from './errors.js';
import { parseWalName } from './names.js';
import { fileSystemId, segmentSystemId } from './system-id.js';

/**
 * One archived WAL file as one object (one atomic write, nothing to pair up):
 *   `OPSWAL1\n` | u32 header length | JSON header | zstd frame of the file
 * The header holds the file's name, size and sha256; fetch checks both before a byte
 * reaches PostgreSQL.
 */
export const WAL_MAGIC = Buffer.from('OPSWAL1\n');

export interface WalHeader {
  format: 'ops-wal/1';
  file: string;
  bytes: number;
  sha256: string;
  codec: 'zstd';
  archivedAt: string;
  /** The cluster's system identifier, from the segment's first page (segments and .partial files only; absent in objects pushed before 2026-12). */
  systemId?: string;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const own = zlib as unknown as { createZstdCompress?: (o?: object) => Transform; constants: Record<string, number> };

/**
 * A zstd frame decompressed through `stages` (the backup codec's decoder: Node's own zstd where
 * it has one, else the binary).
 */
async function unzstdInto(frame: Buffer, stages: [Writable] | [Transform, Writable]): Promise<void> {
  const dec = decoder('zstd', { inProcess: true })!;
  dec.input.on('error', () => undefined); // a child that died early: reported through `done`
  dec.input.end(frame);
  try {
    await Promise.all([pipeline([dec.output, ...stages]), dec.done]);
  } catch (error) {
    dec.kill();
    throw error;
  }
}

/** The header of a file `bytes` long with this sha256, archived at `at`. */
export const walHeader = (file: string, bytes: number, sha256: string, at: Date, systemId?: string): WalHeader => ({ format: 'ops-wal/1', file, bytes, sha256, codec: 'zstd', archivedAt: at.toISOString(), ...(systemId ? { systemId } : {}) });

/** The system identifier of a segment or .partial file on disk; history and backup files carry none. */
export async function walFileSystemId(file: string, filePath: string): Promise<string | undefined> {
  const segment = identifiedSegment(file);
  return segment ? fileSystemId(filePath, segment) : undefined;
}

/** The system identifier in `firstBytes` (a file's first 40 or more) where the file is a segment or .partial file. */
export function systemIdFrom(file: string, firstBytes: Buffer, fileBytes: number): string | undefined {
  const segment = identifiedSegment(file);
  return segment ? segmentSystemId(firstBytes, segment, fileBytes) : undefined;
}

/** The segment whose first page names the cluster, for files that have one (segments, .partial files). */
function identifiedSegment(file: string): { log: number; seg: number } | undefined {
  const name = parseWalName(file);
  return (name?.kind === 'segment' || name?.kind === 'partial') && name.segment ? name.segment : undefined;
}

/** The object's bytes: magic, header length, header, then the zstd frame(s). */
export function walObject(header: WalHeader, compressed: Buffer[]): Buffer {
  return Buffer.concat(walObjectParts(header, compressed));
}

/** The same bytes as parts, for a writer that takes them in order (no 6 MB join per segment). */
export function walObjectParts(header: WalHeader, compressed: Buffer[]): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(WAL_MAGIC.length + 4 + json.length);
  WAL_MAGIC.copy(head, 0);
  head.writeUInt32BE(json.length, WAL_MAGIC.length);
  json.copy(head, WAL_MAGIC.length + 4);
  return [head, ...compressed];
}

/** Node (24+) compresses zstd itself: no process to fork per file. */
export const zstdInProcess = typeof own.createZstdCompress === 'function';

/** Level 1: WAL is compressed on the database host, on every segment; speed over ratio. */
const level1 = () => ({ params: { [own.constants.ZSTD_c_compressionLevel ?? 100]: 1 } });

/**
 * One zstd frame of `content` as views into one large output buffer: the stream hands out
 * slices of it, where zstdCompress() would join them into a fresh copy (and the default
 * 16 KiB chunks cost a callback and a copy each: 84 against 62 ms of CPU per segment here).
 */
function zstdParts(content: Buffer): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  const z = own.createZstdCompress!({ ...level1(), chunkSize: Math.max(64 << 10, Math.min(8 << 20, content.length)) });
  return new Promise((resolve, reject) => {
    z.on('data', (b: Buffer) => parts.push(b));
    z.on('error', reject);
    z.on('end', () => resolve(parts));
    z.end(content);
  });
}

/** Bytes in memory as one zstd frame (level 1): in-process where Node has zstd, else through the binary. */
export async function zstdBytes(bytes: Buffer): Promise<Buffer[]> {
  if (own.createZstdCompress) return zstdParts(bytes);
  const compressed: Buffer[] = [];
  const zstd = startTool('zstd', toolPath('zstd'), ['-1', '-c', '-q'], { stdin: 'pipe' });
  zstd.child.stdin!.end(bytes);
  await Promise.all([pipeline(zstd.child.stdout!, collect(compressed)), zstd.done]);
  return compressed;
}

/**
 * The object for a file on disk. zstd reads the file itself (its 16 MiB never pass through
 * this process: pushing a backlog is bound by these copies), while the file is read here
 * once more for its sha256 (from the page cache). Only the compressed bytes are held. The
 * two reads see the same bytes because the file did not change between them: PostgreSQL
 * never rewrites a file it handed to archive_command, and its inode, size and mtime are
 * compared before and after all the same.
 */
export async function encodeWalFile(file: string, filePath: string, at: Date, hash?: (filePath: string) => Promise<{ sha256: string; bytes: number }>): Promise<{ object: Buffer; header: WalHeader }> {
  const before = await fileIdentity(filePath);
  const systemId = await walFileSystemId(file, filePath);
  const hashing = hash ? hash(filePath) : sha256Of(createReadStream(filePath, { highWaterMark: 1 << 20 })).then(({ sha256, size }) => ({ sha256, bytes: size }));
  const compressed: Buffer[] = [];
  let compressing: Promise<unknown>;
  if (own.createZstdCompress) {
    // 1 MiB output chunks, not zlib's 16 KiB: 20 segments encoded in 0.89-1.06 s instead of
    // 1.19-1.41 (four at a time, Node 24, this machine).
    compressing = pipeline(createReadStream(filePath, { highWaterMark: 1 << 20 }), own.createZstdCompress({ ...level1(), chunkSize: 1 << 20 }), collect(compressed));
  } else {
    const zstd = startTool('zstd', toolPath('zstd'), ['-1', '-c', '-q', '--', filePath]);
    compressing = Promise.all([pipeline(zstd.child.stdout!, collect(compressed)), zstd.done]);
  }
  const [{ sha256, bytes }] = await Promise.all([hashing, compressing]);
  if ((await fileIdentity(filePath)) !== before) throw new Error(`${filePath} changed while it was being archived`);
  const header = walHeader(file, bytes, sha256, at, systemId);
  return { object: walObject(header, compressed), header };
}


function collect(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      into.push(chunk);
      done();
    },
  });
}

/** Inode, size, mtime and ctime: any write to the file between two looks changes it. */
export async function fileIdentity(filePath: string): Promise<string> {
  return identityOf(await stat(filePath, { bigint: true }));
}

const identityOf = (st: BigIntStats) => `${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;


/**
 * The object for a file read once, whole, into `scratch` (a long-lived caller hands the same
 * buffer back for every file: no 16 MiB allocation and page faults per segment): zstd
 * compresses it on the thread pool (Node 24; else the binary, fed from memory) while its
 * sha256 is taken on this thread. For the resident pusher, where every CPU millisecond per
 * segment is the database host's.
 */
export async function encodeWalFileWhole(file: string, filePath: string, at: Date, scratch?: Buffer): Promise<{ object: Buffer[]; header: WalHeader; scratch: Buffer }> {
  const fh = await open(filePath, 'r');
  let before: string;
  let content: Buffer;
  let buffer: Buffer;
  try {
    const st = await fh.stat({ bigint: true });
    before = identityOf(st);
    const size = Number(st.size);
    buffer = scratch && scratch.length >= size ? scratch : Buffer.allocUnsafe(size);
    let read = 0;
    while (read < size) {
      const { bytesRead } = await fh.read(buffer, read, size - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    if (read !== size) throw new Error(`${filePath} changed while it was being archived (${read} of ${size} bytes read)`);
    content = buffer.subarray(0, size);
  } finally {
    await fh.close();
  }
  const compressing = zstdBytes(content);
  const digest = sha256(content);
  const compressed = await compressing;
  if ((await fileIdentity(filePath)) !== before) throw new Error(`${filePath} changed while it was being archived`);
  const header = walHeader(file, content.length, digest, at, systemIdFrom(file, content.subarray(0, 40), content.length));
  return { object: walObjectParts(header, compressed), header, scratch: buffer };
}

/** The header alone (a re-push compares it without decompressing). */
export function readWalHeader(file: string, object: Buffer): WalHeader {
  if (object.length < WAL_MAGIC.length + 4 || !object.subarray(0, WAL_MAGIC.length).equals(WAL_MAGIC)) throw new WalCorruptError(file, 'no OPSWAL1 magic');
  const len = object.readUInt32BE(WAL_MAGIC.length);
  const start = WAL_MAGIC.length + 4;
  if (start + len > object.length) throw new WalCorruptError(file, 'header cut off');
  let header: WalHeader;
  try {
    header = JSON.parse(object.toString('utf8', start, start + len)) as WalHeader;
  } catch {
    throw new WalCorruptError(file, 'header is not JSON');
  }
  if (header.format !== 'ops-wal/1' || header.file !== file || !/^[0-9a-f]{64}$/.test(header.sha256)) throw new WalCorruptError(file, `header names ${header.file ?? '?'} / ${header.format ?? '?'}`);
  return header;
}

/** The file's bytes, proven: decompressed, then size and sha256 equal to the header's. */
export async function decodeWalObject(file: string, object: Buffer): Promise<{ content: Buffer; header: WalHeader }> {
  const header = readWalHeader(file, object);
  const parts: Buffer[] = [];
  try {
    await unzstdInto(frameOf(object), [collect(parts)]);
  } catch (error) {
    throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
  }
  const content = Buffer.concat(parts);
  proven(file, header, content.length, sha256(content));
  return { content, header };
}

/**
 * The object proven as decodeWalObject proves it (decompressed to its end, size and sha256
 * equal to the header's) without keeping the file: for checks that read many segments (a base
 * backup's verification, wal check), where a 16 MiB join per segment set the peak memory.
 */
export async function checkWalObject(file: string, object: Buffer): Promise<WalHeader> {
  const header = readWalHeader(file, object);
  const hasher = new HashingStream();
  try {
    await unzstdInto(frameOf(object), [hasher, discard()]);
  } catch (error) {
    throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
  }
  proven(file, header, hasher.bytes, hasher.digest());
  return header;
}

const frameOf = (object: Buffer) => object.subarray(WAL_MAGIC.length + 4 + object.readUInt32BE(WAL_MAGIC.length));

function proven(file: string, header: WalHeader, bytes: number, actual: string): void {
  if (bytes !== header.bytes) throw new WalCorruptError(file, `${bytes} bytes, header says ${header.bytes}`);
  if (actual !== header.sha256) throw new WalCorruptError(file, `sha256 ${actual.slice(0, 16)}… differs from the header's ${header.sha256.slice(0, 16)}…`);
}

/**
 * The same, streamed into `tmp` (created, never a partial result left): decompressed and
 * hashed on the way, so no 16 MiB buffer is held; `tmp` is complete and proven when this
 * resolves, and the caller renames it into place. With `sync`, fsynced first.
 */
export async function decodeWalObjectTo(file: string, object: Buffer, tmp: string, options: { sync?: boolean } = {}): Promise<WalHeader> {
  const header = readWalHeader(file, object);
  const hasher = new HashingStream();
  const handle = await open(tmp, 'wx', 0o600);
  try {
    try {
      // Written through the handle, which stays open for the fsync (a write stream with
      // autoClose off never reports that it is done).
      await unzstdInto(frameOf(object), [hasher, new Writable({ write: (chunk: Buffer, _enc, done) => void handle.write(chunk).then(() => done(), done) })]);
    } catch (error) {
      throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
    }
    proven(file, header, hasher.bytes, hasher.digest());
    if (options.sync) await handle.sync();
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  return header;
}

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { toolPath } from '../process/tools.js';
import { WalCorruptError } from './errors.js';

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
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type ZstdSync = (b: Buffer) => Buffer;
const own = zlib as unknown as { zstdDecompressSync?: ZstdSync; createZstdCompress?: (o?: object) => Transform; createZstdDecompress?: () => Transform; constants: Record<string, number> };

/** zstd decompression in-process where Node has it (24+), else the zstd binary. */
async function unzstd(input: Buffer): Promise<Buffer> {
  if (own.zstdDecompressSync) return own.zstdDecompressSync(input);
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath('zstd'), ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd exited with ${code}: ${err.trim()}`))));
    child.stdin.end(input);
  });
}

/** The object's bytes: magic, header length, header, then the zstd frame(s). */
export function walObject(header: WalHeader, compressed: Buffer[]): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([WAL_MAGIC, len, json, ...compressed]);
}

/** Node (24+) compresses zstd itself: no process to fork per file. */
export const zstdInProcess = typeof own.createZstdCompress === 'function';

/**
 * The object for a file on disk. zstd reads the file itself (its 16 MiB never pass through
 * this process: pushing a backlog is bound by these copies), while the file is read here
 * once more for its sha256 (from the page cache). Only the compressed bytes are held. The
 * two reads see the same bytes because the file did not change between them: PostgreSQL
 * never rewrites a file it handed to archive_command, and its inode, size and mtime are
 * compared before and after all the same.
 */
export async function encodeWalFile(file: string, filePath: string, at: Date): Promise<{ object: Buffer; header: WalHeader }> {
  const before = await fileIdentity(filePath);
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = pipeline(
    createReadStream(filePath, { highWaterMark: 1 << 20 }),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done();
      },
    }),
  );
  const compressed: Buffer[] = [];
  let compressing: Promise<unknown>;
  if (own.createZstdCompress) {
    compressing = pipeline(createReadStream(filePath, { highWaterMark: 1 << 20 }), own.createZstdCompress({ params: { [own.constants.ZSTD_c_compressionLevel ?? 100]: 1 } }), collect(compressed));
  } else {
    const child = spawn(toolPath('zstd'), ['-1', '-c', '-q', '--', filePath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited with ${code}: ${err.trim()}`))));
    });
    compressing = Promise.all([pipeline(child.stdout, collect(compressed)), exited]);
  }
  await Promise.all([hashing, compressing]);
  if ((await fileIdentity(filePath)) !== before) throw new Error(`${filePath} changed while it was being archived`);
  const header: WalHeader = { format: 'ops-wal/1', file, bytes, sha256: hash.digest('hex'), codec: 'zstd', archivedAt: at.toISOString() };
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
  const st = await stat(filePath, { bigint: true });
  return `${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
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
  let content: Buffer;
  try {
    content = await unzstd(frameOf(object));
  } catch (error) {
    throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
  }
  proven(file, header, content.length, sha256(content));
  return { content, header };
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
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        handle.write(chunk).then(() => done(), done);
      },
    });
    try {
      if (own.createZstdDecompress) {
        await pipeline(Readable.from([frameOf(object)]), own.createZstdDecompress(), sink);
      } else {
        const child = spawn(toolPath('zstd'), ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.stdin.on('error', () => undefined);
        const exited = new Promise<void>((resolve, reject) => {
          child.on('error', reject);
          child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited with ${code}: ${err.trim()}`))));
        });
        child.stdin.end(frameOf(object));
        await Promise.all([pipeline(child.stdout, sink), exited]);
      }
    } catch (error) {
      throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
    }
    proven(file, header, bytes, hash.digest('hex'));
    if (options.sync) await handle.sync();
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  return header;
}

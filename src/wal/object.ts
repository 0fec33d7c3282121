import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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
const own = zlib as unknown as { zstdCompressSync?: ZstdSync; zstdDecompressSync?: ZstdSync };

/** zstd in-process where Node has it (24+), else the zstd binary. */
async function zstd(input: Buffer, decompress: boolean): Promise<Buffer> {
  const inProcess = decompress ? own.zstdDecompressSync : own.zstdCompressSync;
  if (inProcess) return inProcess(input);
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath('zstd'), decompress ? ['-d', '-c', '-q'] : ['-1', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
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

export async function encodeWalObject(file: string, content: Buffer, at: Date): Promise<{ object: Buffer; header: WalHeader }> {
  const header: WalHeader = { format: 'ops-wal/1', file, bytes: content.length, sha256: sha256(content), codec: 'zstd', archivedAt: at.toISOString() };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return { object: Buffer.concat([WAL_MAGIC, len, json, await zstd(content, false)]), header };
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
  const start = WAL_MAGIC.length + 4 + object.readUInt32BE(WAL_MAGIC.length);
  let content: Buffer;
  try {
    content = await zstd(object.subarray(start), true);
  } catch (error) {
    throw new WalCorruptError(file, `does not decompress: ${(error as Error).message}`);
  }
  if (content.length !== header.bytes) throw new WalCorruptError(file, `${content.length} bytes, header says ${header.bytes}`);
  const actual = sha256(content);
  if (actual !== header.sha256) throw new WalCorruptError(file, `sha256 ${actual.slice(0, 16)}… differs from the header's ${header.sha256.slice(0, 16)}…`);
  return { content, header };
}

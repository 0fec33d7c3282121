import { open } from 'node:fs/promises';
import type { Repository } from '../repository/repository.js';
import { WalClusterMismatchError } from './errors.js';
import { walPrefix } from './names.js';

/**
 * Which cluster a WAL segment belongs to: the first page of every segment has PostgreSQL's
 * long page header (XLogLongPageHeaderData: the 24-byte page header, then xlp_sysid, a
 * uint64 in the server's byte order, then xlp_seg_size and xlp_xlog_blcksz). The same
 * number is pg_control_system().system_identifier; initdb chooses it, and a restored or
 * promoted copy keeps it.
 */
const XLP_LONG_HEADER = 0x0002;
const LONG_HEADER_BYTES = 40;

/**
 * The identifier from a segment's first page, only where the page is plainly that segment's
 * long header: its page address is the segment's own start, its segment size is the file's
 * size, its block size a power of two PostgreSQL allows. Anything else (a damaged page, a
 * file that is no WAL) has no identifier here and is not compared.
 */
export function segmentSystemId(firstPage: Buffer, segment: { log: number; seg: number }, fileBytes: number): string | undefined {
  if (firstPage.length < LONG_HEADER_BYTES || (firstPage.readUInt16LE(2) & XLP_LONG_HEADER) === 0) return undefined;
  const segSize = firstPage.readUInt32LE(32);
  const blcksz = firstPage.readUInt32LE(36);
  if (segSize !== fileBytes || !powerOfTwo(segSize, 1 << 20, 1 << 30) || !powerOfTwo(blcksz, 1 << 10, 1 << 16)) return undefined;
  const start = BigInt(segment.log) * 0x1_0000_0000n + BigInt(segment.seg) * BigInt(segSize);
  if (firstPage.readBigUInt64LE(8) !== start) return undefined;
  const id = firstPage.readBigUInt64LE(24);
  return id === 0n ? undefined : id.toString();
}

const powerOfTwo = (n: number, min: number, max: number) => n >= min && n <= max && (n & (n - 1)) === 0;

/** The system identifier in a segment file on disk (undefined for a file without that segment's long header). */
export async function fileSystemId(filePath: string, segment: { log: number; seg: number }): Promise<string | undefined> {
  const fh = await open(filePath, 'r');
  try {
    const buf = Buffer.alloc(LONG_HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, LONG_HEADER_BYTES, 0);
    return segmentSystemId(buf.subarray(0, bytesRead), segment, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

export interface ArchiveIdentity {
  format: 'ops-wal-cluster/1';
  systemId: string;
  /** The file whose push claimed the archive for this cluster. */
  since: string;
  at: string;
}

/** Beside the WAL objects, not one of them: listings that parse WAL names skip it. */
export const identityKey = (name: string) => `${walPrefix(name)}system-id.json`;

/** The cluster this archive holds, as recorded by its first push (undefined: not recorded yet). */
export async function archiveSystemId(repo: Repository, name: string): Promise<string | undefined> {
  const bytes = await repo.getBytes(identityKey(name));
  if (!bytes) return undefined;
  try {
    const id = (JSON.parse(bytes.toString('utf8')) as Partial<ArchiveIdentity>).systemId;
    if (typeof id === 'string' && /^\d+$/.test(id)) return id;
  } catch {
    // falls through to the error below
  }
  throw new Error(`${identityKey(name)} is damaged: it names no system identifier. Rewrite it from pg_control_system() of the archiving server ({"format":"ops-wal-cluster/1","systemId":"…"})`);
}

/**
 * The archive's cluster, claimed by the first push (create-only, so two first pushes agree
 * on one) and compared by every later one. A push of one process asks the repository once.
 */
export class ArchiveClaim {
  private claimed: Promise<string> | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly name: string,
    private readonly now: () => Date,
  ) {}

  /** Resolves when `systemId` is the archive's cluster; WalClusterMismatchError when it is another. */
  async check(systemId: string, file: string): Promise<void> {
    this.claimed ??= this.claim(systemId, file);
    let archived: string;
    try {
      archived = await this.claimed;
    } catch (error) {
      this.claimed = undefined;
      throw error;
    }
    if (archived !== systemId) throw new WalClusterMismatchError(this.name, archived, systemId, file, { file });
  }

  private async claim(systemId: string, file: string): Promise<string> {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const known = await archiveSystemId(this.repo, this.name);
      if (known) return known;
      const record: ArchiveIdentity = { format: 'ops-wal-cluster/1', systemId, since: file, at: this.now().toISOString() };
      if (await this.repo.createExclusive(identityKey(this.name), Buffer.from(`${JSON.stringify(record, null, 2)}\n`))) return systemId;
    }
    throw new Error(`${identityKey(this.name)} appeared and vanished twice while being claimed`);
  }
}

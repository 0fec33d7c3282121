import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupEntry } from '../backup/catalog.js';
import { decoder } from '../backup/codec.js';
import type { FileRecord } from '../knowledge/archive.js';
import { readTar } from '../knowledge/extract.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream, holdLastUntil } from '../util/streams.js';
import { RestoreChecksumError, RestoreError, RestoreRefusedError } from './errors.js';

export class UnsafePathError extends RestoreError {
  constructor(entryPath: string, why: string) {
    super('UNSAFE_PATH', `archive entry "${entryPath}" rejected: ${why}; nothing is written outside the target`, { context: { entryPath } });
    this.name = 'UnsafePathError';
  }
}

/** Where an entry may be written: inside `root`, through no symlink. */
async function safeDestination(root: string, entryPath: string): Promise<string> {
  if (entryPath.includes('\0')) throw new UnsafePathError(entryPath, 'NUL in the name');
  if (path.isAbsolute(entryPath) || /^[a-zA-Z]:/.test(entryPath)) throw new UnsafePathError(entryPath, 'absolute path');
  const parts = entryPath.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafePathError(entryPath, '".." in the path');
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new UnsafePathError(entryPath, `${path.relative(root, current)} is a symlink`);
  }
  const dest = path.join(root, ...parts);
  if (dest !== root && !dest.startsWith(root + path.sep)) throw new UnsafePathError(entryPath, 'resolves outside the target');
  return dest;
}

export interface KnowledgeRestoreResult {
  backupId: string;
  target: string;
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  seconds: number;
}

/**
 * Into a directory that is empty (or confirmed by repeating its path). Every entry's
 * path is checked before anything is written for it; every file's sha256 is compared
 * with the manifest; the payload's own checksum gates the end of the stream.
 */
export async function restoreKnowledge(entry: BackupEntry, targetDir: string, options: { confirm?: string | undefined }, deps: { repo: Repository }): Promise<KnowledgeRestoreResult> {
  const started = Date.now();
  const manifest = entry.manifest!;
  const root = path.resolve(targetDir);
  await mkdir(root, { recursive: true });
  const present = await readdir(root);
  if (present.length > 0 && options.confirm !== targetDir && options.confirm !== root) throw new RestoreRefusedError(targetDir, `${present.length} entries`);
  const expected = new Map((((manifest.details as { entries?: FileRecord[] } | undefined)?.entries ?? []) as FileRecord[]).map((e) => [e.path, e]));
  const result: KnowledgeRestoreResult = { backupId: entry.id, target: root, files: 0, directories: 0, symlinks: 0, bytes: 0, seconds: 0 };
  const dirTimes: [string, Date][] = [];

  const { sink, done } = readTar(async (e, content) => {
    const dest = await safeDestination(root, e.path);
    if (e.type === 'directory') {
      await mkdir(dest, { recursive: true });
      await chmod(dest, e.mode & 0o7777);
      if (e.mtime) dirTimes.push([dest, e.mtime]);
      result.directories += 1;
    } else if (e.type === 'symlink') {
      await symlink(e.linkname ?? '', dest);
      result.symlinks += 1;
    } else if (e.type === 'file') {
      const hasher = new HashingStream();
      await pipeline(content as AsyncIterable<Buffer>, hasher, createWriteStream(dest, { flags: 'wx', mode: e.mode & 0o7777 }));
      await chmod(dest, e.mode & 0o7777);
      if (e.mtime) await utimes(dest, e.mtime, e.mtime);
      const want = expected.get(e.path);
      if (!want || want.sha256 !== hasher.digest()) throw new RestoreError('KNOWLEDGE_FILE_MISMATCH', `${e.path}: content differs from the manifest (restore incomplete)`);
      result.files += 1;
      result.bytes += hasher.bytes;
    } else {
      throw new UnsafePathError(e.path, `entry type ${e.type} is not restored`);
    }
  });

  const hasher = new HashingStream();
  const gate = holdLastUntil(async () => {
    const actual = hasher.digest();
    if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
  });
  const source = await deps.repo.get(manifest.payload.key);
  const dec = decoder(manifest.payload.streamCodec);
  if (dec) await Promise.all([pipeline(source, hasher, gate, dec.input), pipeline(dec.output, sink), dec.done]);
  else await pipeline(source, hasher, gate, sink);
  await done;
  // Directory times last: writing their contents changed them.
  for (const [dir, mtime] of dirTimes.reverse()) await utimes(dir, mtime, mtime);
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

export { safeDestination };

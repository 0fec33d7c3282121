import { createWriteStream } from 'node:fs';
import { link, lstat, mkdir, mkdtemp, open, readdir, rename, rm, symlink, utimes, lutimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupEntry } from '../backup/catalog.js';
import type { FileRecord } from '../knowledge/archive.js';
import { readTar } from '../knowledge/extract.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream } from '../util/streams.js';
import { pipeCheckedPayload, type Progress } from './payload.js';
import { RestoreError, RestoreRefusedError } from './errors.js';

export class UnsafePathError extends RestoreError {
  constructor(entryPath: string, why: string) {
    super('UNSAFE_PATH', `archive entry "${entryPath}" rejected: ${why}; nothing is written outside the target`, { context: { entryPath } });
    this.name = 'UnsafePathError';
  }
}

/** Our own working directories inside a target: staging of this restore, previous contents while swapping. */
const STAGING = '.ops-restore-';
const PREVIOUS = '.ops-previous-';

/**
 * The components of an archive path. POSIX names: only "/" separates, so `a\b` is one
 * name; empty and "." components are dropped; "..", NUL and absolute paths are refused.
 */
export function entryParts(entryPath: string): string[] {
  if (entryPath.includes('\0')) throw new UnsafePathError(entryPath, 'NUL in the name');
  if (entryPath.startsWith('/')) throw new UnsafePathError(entryPath, 'absolute path');
  const parts = entryPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafePathError(entryPath, '".." in the path');
  if (parts.length === 0) throw new UnsafePathError(entryPath, 'empty path');
  return parts;
}

/**
 * Where an entry goes under `root`, creating missing parent directories one at a time.
 * Every component that exists is checked with lstat and must be a real directory: no
 * path operation follows a symlink, whether the archive made it or it was there.
 */
async function safeDestination(root: string, entryPath: string): Promise<string> {
  const parts = entryParts(entryPath);
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (!st) await mkdir(current, { mode: 0o755 });
    else if (!st.isDirectory()) throw new UnsafePathError(entryPath, `${path.relative(root, current)} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`);
  }
  return path.join(current, parts.at(-1)!);
}

export interface KnowledgeRestoreResult {
  backupId: string;
  target: string;
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
  /** Entries of a confirmed non-empty target that the restore replaced (moved aside, then removed). */
  replaced: number;
  seconds: number;
}

/** Modes from the archive, without set-user/group-id: a restore runs as root, the archive is someone else's. */
const safeMode = (mode: number) => mode & 0o1777;

/**
 * Into a directory that is empty (or confirmed by repeating its path). The archive is
 * extracted into a staging directory inside the target (same file system, so the swap is
 * renames), every entry's path checked, every file's sha256 compared with the manifest and
 * the payload's own checksum gating the end of the stream. Only then does the staged tree
 * take the target's place; a failed restore removes the staging directory and leaves the
 * target as it was. A confirmed non-empty target ends holding exactly the backup.
 */
export async function restoreKnowledge(entry: BackupEntry, targetDir: string, options: { confirm?: string | undefined }, deps: { repo: Repository; onProgress?: Progress | undefined }): Promise<KnowledgeRestoreResult> {
  const started = Date.now();
  const manifest = entry.manifest!;
  const root = path.resolve(targetDir);
  // Created by this restore: removed again if it fails, so the target is as it was.
  const created = await mkdir(root, { recursive: true });
  // What a killed restore left: our own staging and swap directories, never the user's data.
  for (const name of (await readdir(root)).filter((n) => n.startsWith(STAGING))) await rm(path.join(root, name), { recursive: true, force: true });
  // A leftover .ops-previous-* holds data that was in the target: it counts, and goes with the rest.
  // lost+found belongs to the file system at a mount point, not to the knowledge base: never moved or removed.
  const present = (await readdir(root)).filter((n) => !n.startsWith(STAGING) && n !== 'lost+found');
  if (present.length > 0 && options.confirm !== targetDir && options.confirm !== root) throw new RestoreRefusedError(targetDir, `${present.length} entries`);
  const expected = new Map((((manifest.details as { entries?: FileRecord[] } | undefined)?.entries ?? []) as FileRecord[]).map((e) => [e.path, e]));
  const result: KnowledgeRestoreResult = { backupId: entry.id, target: root, files: 0, directories: 0, symlinks: 0, hardlinks: 0, bytes: 0, replaced: 0, seconds: 0 };

  const staging = await mkdtemp(path.join(root, STAGING));
  try {
    await extractInto(staging, entry, expected, result, deps.repo, deps.onProgress);
    result.replaced = await swapIn(root, staging, present);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (created) await rm(created, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

async function extractInto(staging: string, entry: BackupEntry, expected: Map<string, FileRecord>, result: KnowledgeRestoreResult, repo: Repository, onProgress?: Progress): Promise<void> {
  const dirTimes: [string, Date][] = [];
  const { sink, done } = readTar(async (e, content) => {
    const dest = await safeDestination(staging, e.path);
    const existing = await lstat(dest).catch(() => undefined);
    // A directory may already exist as the implicit parent of an earlier entry; anything
    // else twice is refused (a symlink, then a directory of the same name, is the attack).
    if (existing && !(e.type === 'directory' && existing.isDirectory())) throw new UnsafePathError(e.path, 'appears twice in the archive');
    if (e.type === 'directory') {
      if (!existing) await mkdir(dest);
      const handle = await open(dest, 'r');
      try {
        await handle.chmod(safeMode(e.mode));
      } finally {
        await handle.close();
      }
      if (e.mtime) dirTimes.push([dest, e.mtime]);
      result.directories += 1;
    } else if (e.type === 'symlink') {
      await symlink(e.linkname ?? '', dest);
      if (e.mtime) await lutimes(dest, e.mtime, e.mtime);
      result.symlinks += 1;
    } else if (e.type === 'link') {
      // A hard link to a file this archive restored earlier, inside the staging tree.
      const to = path.join(staging, ...entryParts(e.linkname ?? ''));
      const st = await lstat(to).catch(() => undefined);
      if (!st?.isFile()) throw new UnsafePathError(e.path, `hard link to "${e.linkname}", which is not a file restored before it`);
      await link(to, dest);
      result.hardlinks += 1;
    } else if (e.type === 'file') {
      const hasher = new HashingStream();
      // 'wx': O_CREAT|O_EXCL, never through an existing name. Mode and time set through
      // the open descriptor, not the path.
      const out = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
      await pipeline(content as AsyncIterable<Buffer>, hasher, out);
      const handle = await open(dest, 'r');
      try {
        await handle.chmod(safeMode(e.mode));
        if (e.mtime) await handle.utimes(e.mtime, e.mtime);
      } finally {
        await handle.close();
      }
      const want = expected.get(e.path);
      if (!want || want.sha256 !== hasher.digest()) throw new RestoreError('KNOWLEDGE_FILE_MISMATCH', `${e.path}: content differs from the manifest (restore stopped, target unchanged)`);
      result.files += 1;
      result.bytes += hasher.bytes;
    } else {
      throw new UnsafePathError(e.path, `entry type ${e.type} is not restored`);
    }
  });

  await pipeCheckedPayload(entry, repo, [sink], onProgress);
  await done;
  // Directory times last: writing their contents changed them. lstat again: only a real directory.
  for (const [dir, mtime] of dirTimes.reverse()) {
    if ((await lstat(dir)).isDirectory()) await utimes(dir, mtime, mtime);
  }
}

/**
 * The staged tree takes the target's place by renames: the target's own entries move into
 * a sibling directory first, then the staged entries move up; on any failure both moves are
 * undone. The previous entries are removed only once the new tree is in place.
 */
async function swapIn(root: string, staging: string, present: string[]): Promise<number> {
  const previous = present.length > 0 ? await mkdtemp(path.join(root, PREVIOUS)) : undefined;
  const movedOld: string[] = [];
  const movedNew: string[] = [];
  try {
    for (const name of present) {
      await rename(path.join(root, name), path.join(previous!, name));
      movedOld.push(name);
    }
    for (const name of await readdir(staging)) {
      await rename(path.join(staging, name), path.join(root, name));
      movedNew.push(name);
    }
  } catch (error) {
    for (const name of movedNew.reverse()) await rename(path.join(root, name), path.join(staging, name)).catch(() => undefined);
    for (const name of movedOld.reverse()) await rename(path.join(previous!, name), path.join(root, name)).catch(() => undefined);
    if (previous) await rm(previous, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  await rm(staging, { recursive: true, force: true });
  if (previous) await rm(previous, { recursive: true, force: true });
  return present.length;
}

export { safeDestination };

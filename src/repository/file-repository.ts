import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, constants, link, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';

/**
 * Backups hold the whole database: readable by their owner only, whatever the umask of
 * the shell or unit that ran the job (under 022 every dump used to be world-readable).
 */
const PRIVATE_FILE = 0o600;
const PRIVATE_DIR = 0o700;
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectNotFoundError, RepositoryError, RepositoryWriteError } from './errors.js';
import type { ObjectInfo, PutOptions, PutResult, Repository } from './repository.js';
import { fsyncPath } from '../util/fsync.js';

/** Files being written carry this marker; readers and listings never see them. */
const PARTIAL = '.partial-';

export class FileRepository implements Repository {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  private resolve(key: string): string {
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep)) {
      throw new RepositoryError('REPOSITORY_KEY_INVALID', `key escapes the repository: ${key}`, { context: { key } });
    }
    return full;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const target = this.resolve(key);
    const partial = `${target}${PARTIAL}${randomBytes(4).toString('hex')}`;
    // Which side failed first: the source feeding the body (pg_dump, Redis) is not the
    // repository, and an error that starts there is reported as the source's own.
    let first: { side: 'source' | 'repository'; error: unknown } | undefined;
    body.once('error', (error) => (first ??= { side: 'source', error }));
    try {
      await mkdir(path.dirname(target), { recursive: true, mode: PRIVATE_DIR });
      const out = createWriteStream(partial, { flags: 'wx', mode: PRIVATE_FILE });
      out.once('error', (error) => (first ??= { side: 'repository', error }));
      await pipeline(body, out, options.signal ? { signal: options.signal } : {});
      await fsyncPath(partial);
      await rename(partial, target);
      return { bytes: out.bytesWritten };
    } catch (error) {
      await unlink(partial).catch(() => undefined);
      if (first?.side === 'source' && !options.signal?.aborted) throw first.error;
      throw new RepositoryWriteError(key, await diagnosed(target, error));
    }
  }

  async putBytes(key: string, body: Buffer | string): Promise<void> {
    await this.writeSmall(key, body, (partial, target) => rename(partial, target));
  }

  async createExclusive(key: string, body: Buffer | string | readonly Buffer[]): Promise<boolean> {
    try {
      // Hard-linked into place: link() fails with EEXIST if the name exists (exclusive, like
      // O_EXCL), and a process killed at any moment leaves nothing or the whole object.
      await this.writeSmall(key, body, async (partial, target) => {
        await link(partial, target);
        // A rename or link is durable only once its directory is.
        await fsyncPath(path.dirname(target));
      });
      return true;
    } catch (error) {
      if (error instanceof RepositoryWriteError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'EEXIST') return false;
      throw error;
    }
  }

  /** Written whole and fsynced under a partial name, then `place`d under the final one; the partial file never stays. */
  private async writeSmall(key: string, body: Buffer | string | readonly Buffer[], place: (partial: string, target: string) => Promise<void>): Promise<void> {
    const target = this.resolve(key);
    const partial = `${target}${PARTIAL}${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(path.dirname(target), { recursive: true, mode: PRIVATE_DIR });
      if (typeof body === 'string' || Buffer.isBuffer(body)) await writeFile(partial, body, { flag: 'wx', mode: PRIVATE_FILE });
      else await writeParts(partial, body);
      await fsyncPath(partial);
      await place(partial, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new RepositoryWriteError(key, error);
      throw new RepositoryWriteError(key, await diagnosed(target, error));
    } finally {
      await unlink(partial).catch(() => undefined);
    }
  }

  async get(key: string): Promise<Readable> {
    const file = this.resolve(key);
    // Open first so a missing object is reported here, not as a stream error later.
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new ObjectNotFoundError(key, error);
      throw new RepositoryError('REPOSITORY_READ_FAILED', `reading ${key}: ${error.message}`, { cause: error });
    });
    return handle.createReadStream({ highWaterMark: 1 << 20 });
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.resolve(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RepositoryError('REPOSITORY_READ_FAILED', `reading ${key}: ${(error as Error).message}`, { cause: error });
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    await this.walk(prefix, (info, isPartial) => {
      if (!isPartial) out.push(info);
    });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async walk(prefix: string, visit: (info: ObjectInfo, isPartial: boolean) => void): Promise<void> {
    const dirPart = prefix.endsWith('/') ? prefix : path.posix.dirname(prefix) + '/';
    const start = dirPart === './' || dirPart === '/' ? this.root : this.resolve(dirPart);
    const recurse = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new RepositoryError('REPOSITORY_LIST_FAILED', `listing ${dir}: ${(error as Error).message}`, { cause: error });
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await recurse(full);
        else if (entry.isFile()) {
          const key = path.relative(this.root, full).split(path.sep).join('/');
          if (!key.startsWith(prefix) && !(key + '/').startsWith(prefix)) continue;
          // A writer's partial file is renamed or unlinked between readdir and stat all the time
          // (every wal push does it): gone is not an error, it is simply not listed.
          const st = await stat(full).catch((error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT') return undefined;
            throw error;
          });
          if (st) visit({ key, size: st.size, lastModified: st.mtime }, entry.name.includes(PARTIAL));
        }
      }
    };
    await recurse(start);
  }

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.resolve(key);
      await unlink(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      dirs.add(path.dirname(file));
    }
    // Remove directories emptied by the deletion, deepest first, never the root.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      let current = dir;
      while (current.startsWith(this.root + path.sep)) {
        try {
          await rmdir(current);
        } catch {
          break;
        }
        current = path.dirname(current);
      }
    }
  }

  async cleanupIncomplete(olderThan: Date): Promise<number> {
    const stale: string[] = [];
    await this.walk('', (info, isPartial) => {
      if (isPartial && info.lastModified < olderThan) stale.push(info.key);
    });
    for (const key of stale) await rm(path.join(this.root, key), { force: true });
    return stale.length;
  }

  /**
   * A check never creates what it checks: a missing directory is what an unmounted volume
   * looks like, and one created here by root would later refuse the postgres user's push.
   */
  async probe(): Promise<void> {
    const info = await stat(this.root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new Error(`repository directory ${this.root} does not exist (is its volume mounted?); create it, owned by the user that writes backups and WAL`);
      throw error;
    });
    if (!info.isDirectory()) throw new Error(`repository ${this.root} is not a directory`);
    await access(this.root, constants.W_OK | constants.X_OK).catch(() => {
      throw new Error(`repository directory ${this.root} is not writable by this user (uid ${process.getuid?.() ?? '?'})`);
    });
  }
}

/**
 * What is really wrong when a write fails. A recursive mkdir on a read-only file system
 * reports ENOENT for the first missing directory; access(W_OK) on the nearest directory
 * that exists tells read-only (EROFS) and permission (EACCES) apart.
 */
async function diagnosed(target: string, error: unknown): Promise<Error> {
  const code = (error as NodeJS.ErrnoException).code;
  let dir = path.dirname(target);
  while (!(await stat(dir).then(() => true, () => false)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const writable = await access(dir, constants.W_OK).then(() => undefined, (e: NodeJS.ErrnoException) => e.code);
  const why =
    writable === 'EROFS' || code === 'EROFS'
      ? `the file system holding ${dir} is mounted read-only (EROFS): remount it read-write or point OPS_REPOSITORY_URL elsewhere`
      : writable === 'EACCES' || writable === 'EPERM' || code === 'EACCES' || code === 'EPERM'
        ? `permission denied writing under ${dir} (${writable ?? code}): run as a user who may write there, or fix its owner/mode`
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? `no space left on the file system holding ${dir} (${code}): free space or move the repository`
          : undefined;
  return why ? Object.assign(new Error(why, { cause: error }), { code: code ?? writable }) : (error as Error);
}

/** Parts written in order with writev (a WAL object's header and its compressed bytes, never joined in memory). */
async function writeParts(file: string, parts: readonly Buffer[]): Promise<void> {
  const fh = await open(file, 'wx', PRIVATE_FILE);
  try {
    let left = parts.filter((p) => p.length > 0);
    while (left.length > 0) {
      let { bytesWritten } = await fh.writev(left);
      const rest: Buffer[] = [];
      for (const p of left) {
        if (bytesWritten >= p.length) bytesWritten -= p.length;
        else {
          rest.push(p.subarray(bytesWritten));
          bytesWritten = 0;
        }
      }
      left = rest;
    }
  } finally {
    await fh.close();
  }
}

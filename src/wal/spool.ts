import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The local spool that makes one-process-per-file archiving fast, in both directions:
 * `wal push` records files it pushed ahead of PostgreSQL's asking (`<file>.ok`), and
 * `wal fetch` keeps segments it fetched ahead of recovery's asking (`fetch/<file>`).
 * This module has no heavy imports: bin/opsctl.js answers spool hits from it before it
 * loads the rest of the CLI, and bin/opsctl (a shell script, what PostgreSQL should call)
 * answers them before it starts Node at all: the two must read the spool alike.
 */
/** Per user: the first creator of a shared directory would own it, and 0700 keeps others out. */
export const defaultSpool = (name: string) => path.join(os.tmpdir(), `ops-wal-spool-${process.getuid?.() ?? 'user'}`, name);

/**
 * What identifies the local file that was pushed: inode, size and mtime to the nanosecond,
 * written exactly as GNU `stat -L -c '%i %s %.9Y'` prints them, so that bin/opsctl (a shell
 * script) can compare them without starting Node.
 */
export async function fileStamp(filePath: string): Promise<string | undefined> {
  return fileStampNow(filePath);
}

/**
 * The spool's own bookkeeping (stamps, the trust walk, records) uses synchronous calls: each
 * is one small syscall, while an asynchronous one is a trip through libuv's thread pool, and
 * the resident pusher made about 90 of them per segment (strace -c), a few ms of its CPU.
 */
function fileStampNow(filePath: string): string | undefined {
  const st = statSync(filePath, { bigint: true, throwIfNoEntry: false });
  if (!st) return undefined;
  const ns = st.mtimeNs;
  const sec = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${st.ino} ${st.size} ${sec}.${frac}`;
}

/**
 * A spool in a shared place (/tmp) is only believed when nobody else can have put anything
 * in it: every component of its path a real directory (no symlink), owned by this user or
 * root, and writable by nobody else (a root-owned sticky directory such as /tmp excepted).
 * Otherwise a local user who made /tmp/ops-wal-spool-<uid> first could hand recovery any
 * bytes. bin/opsctl's shell fast path applies the same rule (owned_path).
 */
export async function trusted(dir: string): Promise<boolean> {
  const me = process.getuid?.();
  const abs = path.resolve(dir);
  const parts = abs.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i += 1) {
    const p = path.sep + parts.slice(0, i).join(path.sep);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return false;
    if (me !== undefined && st.uid !== me && st.uid !== 0) return false;
    const last = i === parts.length;
    const othersWrite = (st.mode & 0o022) !== 0;
    if (othersWrite && (last || !(st.uid === 0 && (st.mode & 0o1000) !== 0))) return false;
    if (last && me !== undefined && st.uid !== me) return false;
  }
  return true;
}

const ensureDir = (dir: string) => mkdir(dir, { recursive: true, mode: 0o700 });

/**
 * What a spool's records and segments were made for: the configuration file as it is now
 * (path, inode, size, mtime) and the overrides that pick the repository. A spool made for
 * another repository, or before the file changed, is never believed: a segment fetched
 * ahead from one repository must not answer a fetch from another, nor a push recorded in
 * one stand for the next. bin/opsctl computes the same line (spool_source).
 */
export async function spoolSource(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return `${configPath}|${(await fileStamp(configPath)) ?? 'missing'}|${env.OPS_REPOSITORY_URL ?? ''}|${env.AWS_ENDPOINT_URL_S3 ?? ''}`;
}

const SOURCE = '.source';
/** Library callers without a configuration file: one constant source, so their spools still work. */
export const NO_SOURCE = 'library';

export async function sourceMatches(spool: string, source: string): Promise<boolean> {
  return sourceMatchesNow(spool, source);
}

function sourceMatchesNow(spool: string, source: string): boolean {
  let text: string;
  try {
    text = readFileSync(path.join(spool, SOURCE), 'utf8');
  } catch {
    return false;
  }
  return text.replace(/\n$/, '') === source;
}

/** Before writing into a spool: one made for another source is emptied first, then marked as ours. */
export async function claimSpool(spool: string, source: string, owner?: { uid: number; gid: number }): Promise<void> {
  await ensureDir(spool);
  // Never empties a directory somebody else controls; with an owner, root is preparing a
  // spool it just made inside the restore's own directory for the server's user.
  if (!owner && !(await trusted(spool))) return;
  if (await sourceMatches(spool, source)) return;
  for (const entry of await readdir(spool).catch(() => [] as string[])) await rm(path.join(spool, entry), { recursive: true, force: true });
  const tmp = path.join(spool, `${SOURCE}.${process.pid}`);
  await writeFile(tmp, `${source}\n`, { mode: 0o600 });
  if (owner) await chown(tmp, owner.uid, owner.gid);
  await rename(tmp, path.join(spool, SOURCE));
}

/** Records a file pushed ahead; the spool must have been claimed for `source` first (claimSpool, once per call: claims in parallel would empty each other's work). */
export async function recordPushed(spool: string, file: string, filePath: string, source: string): Promise<void> {
  const stamp = fileStampNow(filePath);
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  if (!stamp || !(await trusted(spool)) || !sourceMatchesNow(spool, source)) return;
  const tmp = path.join(spool, `.${file}.${process.pid}`);
  writeFileSync(tmp, `${stamp}\n`, { mode: 0o600 });
  renameSync(tmp, path.join(spool, `${file}.ok`));
}

/**
 * True (and the record consumed) when `filePath` is the very file an earlier call pushed:
 * same inode, size and mtime. PostgreSQL never rewrites a segment it marked .ready; a file
 * that changed since has another mtime and is pushed (and compared) in full.
 */
export async function takePushed(spool: string, file: string, filePath: string, source: string): Promise<boolean> {
  if (!(await trusted(spool)) || !(await sourceMatches(spool, source))) return false;
  const okFile = path.join(spool, `${file}.ok`);
  const text = await readFile(okFile, 'utf8').catch(() => undefined);
  if (!text) return false;
  const stamp = await fileStamp(filePath);
  if (!stamp || text.trim() !== stamp) return false;
  await rm(okFile, { force: true });
  return true;
}

/** Records bin/opsctl consumed (it empties them rather than fork an rm): removed here. */
export async function sweepConsumed(spool: string): Promise<void> {
  if (!(await trusted(spool))) return;
  let names: string[];
  try {
    names = readdirSync(spool).filter((f) => f.endsWith('.ok'));
  } catch {
    return;
  }
  for (const f of names) {
    const st = statSync(path.join(spool, f), { throwIfNoEntry: false });
    if (st?.isFile() && st.size === 0) rmSync(path.join(spool, f), { force: true });
  }
}

/** Where a push's scratch files go: inside the spool when it is ours (nothing left in /tmp), else the temp directory. */
export async function spoolTmp(spool: string): Promise<string> {
  await ensureDir(spool).catch(() => undefined);
  return (await trusted(spool)) ? spool : os.tmpdir();
}

/** A segment fetched ahead and already checked: moved into PostgreSQL's destination. */
export async function takeFetched(spool: string, file: string, dest: string, source: string): Promise<boolean> {
  if (!(await trusted(path.join(spool, 'fetch'))) || !(await sourceMatches(spool, source))) return false;
  const ahead = path.join(spool, 'fetch', file);
  try {
    await rename(ahead, dest);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EXDEV') {
      // Another file system: copied, then removed.
      await writeFile(dest, await readFile(ahead), { mode: 0o600 });
      await rm(ahead, { force: true });
      return true;
    }
    return false;
  }
}

/**
 * Recovery asks in order and never goes back: segments waiting in the spool with names
 * before `file` (fetched ahead, then asked for before they arrived) are never taken.
 */
export async function dropBefore(spool: string, file: string): Promise<void> {
  const dir = path.join(spool, 'fetch');
  if (!(await trusted(dir))) return;
  const stale = (await readdir(dir).catch(() => [] as string[])).filter((f) => /^[0-9A-F]{24}$/.test(f) && f < file);
  await Promise.all(stale.map((f) => rm(path.join(dir, f), { force: true })));
}

/** A segment fetched ahead: `write` fills (and proves) a temporary file, renamed into the spool only when whole. */
export async function storeFetched(spool: string, file: string, source: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  const dir = path.join(spool, 'fetch');
  await ensureDir(dir);
  if (!(await trusted(dir)) || !(await sourceMatches(spool, source))) return;
  const tmp = path.join(dir, `.${file}.${process.pid}`);
  await write(tmp);
  await rename(tmp, path.join(dir, file));
}

/**
 * The fast path bin/opsctl.js takes before loading the CLI: `wal push PATH --name N
 * [--spool D]` whose file was pushed ahead, or `wal fetch FILE DEST --name N [--spool D]`
 * whose segment was fetched ahead. Anything else (or a miss) returns false and the full
 * command runs.
 */
export async function spoolFastPath(argv: string[]): Promise<boolean> {
  const i = argv.indexOf('wal');
  if (i < 0) return false;
  const verb = argv[i + 1];
  const opt = (name: string) => {
    const k = argv.indexOf(name);
    return k >= 0 ? argv[k + 1] : undefined;
  };
  const name = opt('--name');
  if (!name || argv.includes('--json')) return false;
  const spool = opt('--spool') ?? defaultSpool(name);
  const source = await spoolSource(configPathOf(opt('--config'), process.env));
  if (verb === 'push') {
    const filePath = argv[i + 2];
    if (!filePath || filePath.startsWith('-')) return false;
    const file = path.basename(filePath);
    if (!(await takePushed(spool, file, filePath, source))) return false;
    process.stdout.write(`${file}: spooled\n`);
    return true;
  }
  if (verb === 'fetch') {
    const [file, dest] = [argv[i + 2], argv[i + 3]];
    if (!file || !dest || file.startsWith('-') || dest.startsWith('-') || !/^[0-9A-F]{24}$/.test(file)) return false;
    if (!(await takeFetched(spool, file, dest, source))) return false;
    process.stdout.write(`${file}: fetched ahead, sha256 checked\n`);
    return true;
  }
  return false;
}

/**
 * resolveConfigPath's rule without loading the configuration code (the fast path stays
 * small): --config, else OPS_CONFIG, else ./ops.config.json, else the package's own.
 */
export function configPathOf(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  if (explicit) return path.resolve(cwd, explicit);
  if (env.OPS_CONFIG) return path.resolve(cwd, env.OPS_CONFIG);
  const local = path.join(cwd, 'ops.config.json');
  if (existsSync(local)) return local;
  return fileURLToPath(new URL('../../ops.config.json', import.meta.url));
}

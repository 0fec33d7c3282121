import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { runTool, type RunningTool } from '../process/tool.js';
import { parsePgToolVersion } from '../process/tools.js';

/** How often, and for how long, the running --list's binary is looked for. */
const LOOK_EVERY_MS = 5;
const LOOK_FOR_MS = 2000;

/**
 * The version of the pg_restore that is running `list` (pg_restore --list). On Debian
 * `pg_restore` is pg_wrapper, a Perl script that picks a PostgreSQL version and execs its
 * binary; asking the wrapper for --version is a second Perl start (about 40 ms of a small
 * verify, on the CPU --list's own start needs). So the binary --list runs is read from
 * /proc/<pid>/exe once the wrapper has exec'd it, and that binary is asked: the version
 * recorded is the one that read the archive. Where it cannot be seen (no /proc, the process
 * gone, a wrapper that does not exec), the command is asked as before.
 */
export async function runningPgRestoreVersion(list: RunningTool, pgRestore: string, env: NodeJS.ProcessEnv): Promise<string> {
  const ask = async (command: string) => parsePgToolVersion(await runTool('pg_restore', command, ['--version'], env)).version;
  const binary = await runningBinary(list);
  // A binary that cannot run alone (its libraries found only by the wrapper's environment): the command is asked.
  return (binary ? await ask(binary).catch(() => undefined) : undefined) ?? ask(pgRestore);
}

/**
 * The executable of `tool`'s process once it is a `pg_restore` (a wrapper's exe is its
 * interpreter), while the process runs; undefined once it has exited or after LOOK_FOR_MS.
 * A process that exited is a zombie until Node reaps it, and its pid cannot be reused
 * before: so an answer read while `exitCode` is still null is this process's.
 */
function runningBinary(tool: RunningTool): Promise<string | undefined> {
  const pid = tool.child.pid;
  if (pid === undefined || process.platform !== 'linux') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const started = Date.now();
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (binary: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(binary);
    };
    const running = () => tool.child.exitCode === null && tool.child.signalCode === null;
    const look = () => {
      readlink(`/proc/${pid}/exe`).then(
        (exe) => {
          if (!running()) finish(undefined);
          else if (path.basename(exe) === 'pg_restore') finish(exe);
          else if (Date.now() - started > LOOK_FOR_MS) finish(undefined);
          else timer = setTimeout(look, LOOK_EVERY_MS);
        },
        () => finish(undefined),
      );
    };
    tool.done.then(
      () => finish(undefined),
      () => finish(undefined),
    );
    look();
  });
}

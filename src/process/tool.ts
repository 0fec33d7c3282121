import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ToolFailedError, ToolNotFoundError } from './errors.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const STDERR_TAIL = 8192;

/**
 * A running external tool (pg_dump, zstd, pg_restore). `done` settles when the process
 * has exited: it resolves on exit 0 and rejects with its stderr tail otherwise, so an
 * exit code is never ignored.
 */
export interface RunningTool {
  readonly name: string;
  readonly child: ChildProcess;
  readonly done: Promise<void>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

export function startTool(
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' | Readable; stdout?: 'pipe' | 'ignore' } = {},
): RunningTool {
  const stdin = options.stdin ?? 'ignore';
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: [stdin, options.stdout ?? 'pipe', 'pipe'],
  });
  // Another process's stdout handed over as stdin: the child holds its own copy of the
  // descriptor; ours must close, or the producer's 'close' would never fire.
  if (typeof stdin === 'object') stdin.destroy();
  let tail = '';
  let signalled = false;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new ToolNotFoundError(`${name} (${command})`, error) : error);
    });
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ToolFailedError(name, { code, signal }, tail, !signalled));
    });
  });
  // Observed by callers through `done`; this keeps an early failure from being an unhandled rejection.
  done.catch(() => undefined);
  return {
    name,
    child,
    done,
    stderr: () => tail,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        signalled = true;
        child.kill(signal);
        // What it still had to say is not wanted. Left open, its stdout would keep `done`
        // from settling while it is piped into a consumer that stopped reading: Node resumes
        // the stream when the process exits, the full consumer pauses it again, and 'close'
        // never comes (seen: SIGTERM during an S3 upload held a backup for the 90 s backstop,
        // the cleanup waiting on the killed zstd).
        child.stdout?.destroy();
      }
    },
  };
}

/** Run a short command to completion and return its stdout. */
export async function runTool(name: string, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const tool = startTool(name, command, args, env ? { env } : {});
  let out = '';
  tool.child.stdout?.setEncoding('utf8');
  tool.child.stdout?.on('data', (chunk: string) => {
    out += chunk;
  });
  await tool.done;
  return out;
}

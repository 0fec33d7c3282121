import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './tmp.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OPSCTL = path.join(ROOT, 'bin', 'opsctl.js');
/** What package.json installs as `opsctl`: a shell script answering spooled WAL calls, else Node with OPSCTL above. */
export const OPSCTL_SH = path.join(ROOT, 'bin', 'opsctl');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI as a separate process, the way operators and containers do. */
export function runCli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; onSpawn?: (pid: number, stderr: NodeJS.ReadableStream) => void; command?: string[] } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...pre] = options.command ?? [process.execPath, OPSCTL];
    const child = spawn(cmd!, [...pre, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    if (options.onSpawn && child.pid) options.onSpawn(child.pid, child.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export async function tempDir(prefix = 'ops-test-'): Promise<string> {
  return makeTempDir(prefix);
}

/** A config file for one seeds-style database and a repository, written to a temp dir. */
export async function writeConfig(dir: string, config: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, 'ops.config.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

export function postgresConfig(name: string, url: string, repositoryUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    repository: { url: repositoryUrl },
    postgres: [{ name, url, ...extra }],
  };
}

/** An executable shell script (a stand-in tool for failure injection). */
export async function writeScript(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  return file;
}

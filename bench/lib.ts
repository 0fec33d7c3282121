import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORK = path.join(ROOT, '.bench');
export const OPSCTL = path.join(ROOT, 'bin', 'opsctl.js');
/** What an operator (and the job image's entrypoint) runs: the script that starts Node with opsctl's V8 flags. */
export const OPSCTL_SH = path.join(ROOT, 'bin', 'opsctl');

export interface Measured {
  seconds: number;
  /** Peak RSS in MiB: opsctl's own when it reports it, else the largest process GNU time saw. */
  rssMiB: number;
  /** User + system CPU seconds of the command and every child it waited for (GNU time). */
  cpuSeconds?: number;
  stdout: string;
  stderr: string;
}

/** Run a shell command line under GNU time; fail loudly on a non-zero exit. */
export async function measure(command: string, env: Record<string, string> = {}): Promise<Measured> {
  await mkdir(WORK, { recursive: true });
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'time-max-rss-kb=%M time-cpu=%U+%S', 'bash', '-o', 'pipefail', '-c', command], {
      cwd: ROOT,
      // `node` in a command is the Node running the bench (24, through scripts/node24.sh: the
      // image's and Lambda's runtime), not the machine's own (20 here): until 2026-12-05 every
      // `node bin/opsctl.js` here ran on Node 20, which has no zstd of its own, so verify
      // measured the zstd binary's path, not the one that ships.
      env: { ...process.env, ...env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, OPS_REPORT_RSS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} exited ${code}: ${stderr.slice(-2000)}`));
      // A script of many opsctl calls reports once per call: the highest counts.
      const reports = [...stderr.matchAll(/opsctl-max-rss-kb=(\d+)/g)].map((m) => Number(m[1]));
      const own = reports.length > 0 ? String(Math.max(...reports)) : undefined;
      const any = /time-max-rss-kb=(\d+)/.exec(stderr)?.[1];
      const cpu = /time-cpu=([\d.]+)\+([\d.]+)/.exec(stderr);
      resolve({ seconds, rssMiB: Number(own ?? any ?? 0) / 1024, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : Number.NaN, stdout, stderr });
    });
  });
}

/** A Markdown table; a '|' inside a cell (a shell pipeline) is escaped, or it would split the row. */
export function table(rows: (string | number)[][], header: string[]): string {
  const row = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
  const lines = [row(header), `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(row(r));
  return lines.join('\n');
}

export const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
export const fixed = (n: number, d = 2) => n.toFixed(d);

/** Run `n` times: median seconds, highest RSS (single runs vary by a quarter on a 2-core machine). */
export async function measureMedian(command: string, env: Record<string, string> = {}, n = 3): Promise<Measured> {
  const runs: Measured[] = [];
  for (let i = 0; i < n; i += 1) runs.push(await measure(command, env));
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor(n / 2)]!;
  return { ...median, rssMiB: Math.max(...runs.map((r) => r.rssMiB)) };
}

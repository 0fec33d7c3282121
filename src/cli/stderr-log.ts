import type { Log } from '../log.js';
import { formatBytes } from '../util/format.js';

/** Human log lines on stderr (stdout is reserved for results and `--json`). */
export function stderrLog(verbose: boolean): Log {
  const write = (level: string, message: string, context?: Record<string, unknown>) => {
    const extra = context && Object.keys(context).length > 0 ? ` ${JSON.stringify(context)}` : '';
    process.stderr.write(`${level} ${message}${extra}\n`);
  };
  return {
    debug: (m, c) => verbose && write('debug', m, c),
    info: (m, c) => verbose && write('info ', m, c),
    warn: (m, c) => write('warn ', m, c),
    error: (m, c) => write('error', m, c),
  };
}

/** Progress on stderr: rewritten in place on a terminal, a line every 10 s otherwise. */
export function stderrProgress(): (task: string, done: number, total?: number) => void {
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  const started = new Map<string, number>();
  return (task, done, total) => {
    const now = Date.now();
    if (!started.has(task)) started.set(task, now);
    // In a log, the first line comes after 10 s: a rate over the first chunk means nothing.
    if (!tty && now - Math.max(lastLine, started.get(task) ?? now) < 10_000) return;
    lastLine = now;
    const secs = Math.max(0.001, (now - (started.get(task) ?? now)) / 1000);
    const pct = total ? ` (${Math.min(100, (100 * done) / total).toFixed(0)}%)` : '';
    const text = `${task}: ${formatBytes(done)}${pct}, ${formatBytes(done / secs)}/s`;
    process.stderr.write(tty ? `\r\u001b[K${text}` : `${text}\n`);
  };
}

export function endProgressLine(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
}

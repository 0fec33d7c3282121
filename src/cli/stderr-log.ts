import type { Log } from '../log.js';
import { formatBytes, formatDuration } from '../util/format.js';

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

/**
 * One progress line, the same for every long command: done of total, percentage, rate,
 * time left. A total known only roughly (a backup's: its previous backup's size) is shown
 * with "~", and its percentage stops at 99 % until the work is done.
 */
export function progressText(task: string, done: number, elapsedSeconds: number, total?: number, estimated = false): string {
  const rate = done / Math.max(0.001, elapsedSeconds);
  if (!total) return `${task}: ${formatBytes(done)}, ${formatBytes(rate)}/s`;
  const pct = Math.min(estimated ? 99 : 100, (100 * done) / total);
  const left = rate > 0 ? Math.max(0, (total - done) / rate) : undefined;
  const eta = left === undefined ? '' : done >= total ? (estimated ? ', about done' : ', done') : `, ${estimated ? '~' : ''}${formatDuration(left)} left`;
  return `${task}: ${formatBytes(done)} of ${estimated ? '~' : ''}${formatBytes(total)} (${pct.toFixed(0)}%), ${formatBytes(rate)}/s${eta}`;
}

/** Progress on stderr: rewritten in place on a terminal, a line every 10 s otherwise. */
export function stderrProgress(): (task: string, done: number, total?: number, estimated?: boolean) => void {
  const tty = process.stderr.isTTY === true;
  // Every 10 s in a log (OPS_PROGRESS_INTERVAL_MS: another interval, 0 for every update).
  const interval = Number(process.env.OPS_PROGRESS_INTERVAL_MS ?? 10_000);
  let lastLine = 0;
  const started = new Map<string, number>();
  return (task, done, total, estimated) => {
    const now = Date.now();
    if (!started.has(task)) started.set(task, now);
    // In a log, the first line comes after the interval: a rate over the first chunk means nothing.
    if (!tty && now - Math.max(lastLine, started.get(task) ?? now) < interval) return;
    lastLine = now;
    const text = progressText(task, done, (now - (started.get(task) ?? now)) / 1000, total, estimated);
    process.stderr.write(tty ? `\r\u001b[K${text}` : `${text}\n`);
  };
}

export function endProgressLine(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
}

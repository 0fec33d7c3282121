import type { JobContext } from '../../jobs/context.js';
import { checkFreshness, emitFreshness, type FreshnessReport } from '../../status/freshness.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { EXIT, colour, renderTable, type CommandOutcome, type ExitCode } from '../output.js';

export function freshnessExitCode(report: FreshnessReport): ExitCode {
  const states = [...report.backups.map((b) => b.state), ...report.partitions.map((p) => p.state)];
  if (states.some((s) => s === 'missing' || s === 'error')) return EXIT.failed;
  if (states.some((s) => s !== 'ok')) return EXIT.degraded;
  return EXIT.ok;
}

/** `opsctl status [--emit]`: freshness per target; with --emit also pushes the gauges the stale alarms use. */
export async function statusCommand(ctx: JobContext, options: { emit: boolean }): Promise<CommandOutcome> {
  const report = await checkFreshness(ctx);
  if (options.emit) emitFreshness(ctx, report);
  const exitCode = freshnessExitCode(report);
  const c = colour(process.stdout.isTTY === true);
  const paint = (state: string) => (state === 'ok' ? c.green('OK') : state === 'missing' || state === 'error' ? c.red(state.toUpperCase()) : c.yellow(state.toUpperCase()));
  const backups = renderTable(report.backups, [
    { header: 'COMPONENT', value: (b) => `${b.component}/${b.name}` },
    { header: 'STATE', value: (b) => paint(b.state) },
    { header: 'NEWEST', value: (b) => b.newest?.id ?? '-' },
    { header: 'AGE', value: (b) => (b.newest ? formatDuration(b.newest.ageSeconds) : '-'), align: 'right' },
    { header: 'LIMIT', value: (b) => formatDuration(b.thresholdSeconds), align: 'right' },
    { header: 'SIZE', value: (b) => (b.newest ? formatBytes(b.newest.bytes) : '-'), align: 'right' },
    { header: 'VERIFIED', value: (b) => (b.newest?.verifyOk === true ? `L${b.newest.verifiedLevel}` : b.newest?.verifyOk === false ? 'FAILED' : '-') },
    { header: 'DETAIL', value: (b) => b.detail },
  ]);
  const parts = report.partitions.length
    ? renderTable(report.partitions, [
        { header: 'DATABASE', value: (p) => p.database },
        { header: 'STATE', value: (p) => paint(p.state) },
        { header: 'LAST RUN', value: (p) => (p.ageSeconds === null ? '-' : `${formatDuration(p.ageSeconds)} ago`), align: 'right' },
        { header: 'AHEAD (MIN)', value: (p) => `${Object.values(p.coverage).length ? Math.min(...Object.values(p.coverage)) : '-'} (${p.minCoverage})`, align: 'right' },
        { header: 'DETAIL', value: (p) => p.detail },
      ])
    : '';
  const verdict = exitCode === EXIT.ok ? c.green('OK') : exitCode === EXIT.degraded ? c.yellow('DEGRADED') : c.red('DOWN');
  return { exitCode, json: { state: exitCode === EXIT.ok ? 'OK' : exitCode === EXIT.degraded ? 'DEGRADED' : 'DOWN', ...report }, text: [`status: ${verdict}`, backups, parts].filter(Boolean).join('\n\n') };
}

/** `opsctl healthcheck`: reachability only, with seed 004's exit codes (0 OK, 1 DEGRADED, 2 DOWN). */
export async function healthcheckCommand(ctx: JobContext, options: { timeoutMs: number }): Promise<CommandOutcome> {
  const { healthcheck } = await import('../../status/healthcheck.js');
  const report = await healthcheck(ctx, options);
  const c = colour(process.stdout.isTTY === true);
  const table = renderTable(report.checks, [
    { header: 'CHECK', value: (h) => h.check },
    { header: 'TARGET', value: (h) => h.target },
    { header: 'STATE', value: (h) => (h.ok ? c.green('OK') : h.critical ? c.red('DOWN') : c.yellow('DEGRADED')) },
    { header: 'MS', value: (h) => String(h.ms), align: 'right' },
    { header: 'DETAIL', value: (h) => h.detail },
  ]);
  const verdict = report.state === 'OK' ? c.green('OK') : report.state === 'DEGRADED' ? c.yellow('DEGRADED') : c.red('DOWN');
  const exitCode = report.state === 'OK' ? EXIT.ok : report.state === 'DEGRADED' ? EXIT.degraded : EXIT.failed;
  return { exitCode, json: report, text: `health: ${verdict}\n\n${table}` };
}

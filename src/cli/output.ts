import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
export const EXIT = { ok: 0, degraded: 1, failed: 2, usage: 64 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * restore_command's contract: PostgreSQL reads an exit status of 1-125 as "not in the
 * archive", ends recovery there and promotes; above 125 it aborts recovery. So `wal fetch`
 * exits 1 only for a name the archive does not hold, and this for every other failure (a
 * damaged object, an unreachable repository, bad usage, an interruption): a recovery that
 * cannot be fed stops instead of coming back early with exit 0.
 */
export const RECOVERY_FATAL = 255;

/** The process exit status of a run of `argv` that ended with `code`. */
export function processExit(argv: readonly string[], code: number): number {
  const at = argv.indexOf('wal');
  const isFetch = at >= 0 && argv[at + 1] === 'fetch';
  return isFetch && code !== EXIT.ok && code !== EXIT.degraded ? RECOVERY_FATAL : code;
}

/** What every command returns: the JSON document for `--json`, the text for people, the exit code. */
export interface CommandOutcome {
  exitCode: ExitCode;
  json: unknown;
  text: string;
}

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  align?: 'left' | 'right';
}

/** A plain aligned table; no colours when the output is not a terminal. */
export function renderTable<T>(rows: T[], columns: Column<T>[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => visibleLength(r[i] ?? ''))));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]?.align === 'right' ? padStart(v, widths[i]!) : padEnd(v, widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

const ANSI = /\u001b\[[0-9;]*m/g;
function visibleLength(s: string): number {
  return s.replace(ANSI, '').length;
}
function padEnd(s: string, w: number): string {
  return s + ' '.repeat(Math.max(0, w - visibleLength(s)));
}
function padStart(s: string, w: number): string {
  return ' '.repeat(Math.max(0, w - visibleLength(s))) + s;
}

export function colour(enabled: boolean) {
  const wrap = (code: number) => (s: string) => (enabled ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { green: wrap(32), yellow: wrap(33), red: wrap(31), bold: wrap(1), dim: wrap(2) };
}

/** The worst of several outcomes decides the exit code. */
export function worst(codes: ExitCode[]): ExitCode {
  return codes.reduce<ExitCode>((a, b) => (a === EXIT.usage || b === EXIT.usage ? EXIT.usage : (Math.max(a, b) as ExitCode)), EXIT.ok);
}

/**
 * An HTML page written where asked. A page that cannot be written is a line in the
 * outcome and exit 64 (the path given is wrong): the report itself is still printed.
 */
export async function writePage(file: string, html: string): Promise<string | undefined> {
  try {
    await writeFile(file, html);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `error: the HTML page was not written to ${file}: ${code === 'ENOENT' ? `the directory ${path.dirname(path.resolve(file))} does not exist` : errorMessage(error)}`;
  }
}

/** The outcome with the page's problem, if any, appended (and exit 64). */
export function withPage(outcome: CommandOutcome, problem: string | undefined): CommandOutcome {
  if (!problem) return outcome;
  return { exitCode: worst([outcome.exitCode, EXIT.usage]), json: { ...(outcome.json as object), htmlError: problem }, text: `${outcome.text}\n${problem}` };
}


import type { OpsConfig } from '../config/load.js';
import { OpsError } from '../errors.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { openRepository } from '../repository/open.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { NullMetrics } from '../metrics/recorder.js';

/** Everything a job needs, built once at the edge (CLI, Lambda handler, container entrypoint). */
export interface JobContext {
  config: OpsConfig;
  repo: Repository;
  log: Log;
  metrics: MetricsRecorder;
  env: NodeJS.ProcessEnv;
  now: () => Date;
  signal?: AbortSignal | undefined;
  /** Progress for people: "postgres/callcenter 120 MiB". Absent in Lambdas. */
  /** `estimated`: the total is a guess (a backup's previous size), not a known size. */
  progress?: ((task: string, done: number, total?: number, estimated?: boolean) => void) | undefined;
}

export function createJobContext(
  config: OpsConfig,
  log: Log,
  options: Partial<Omit<JobContext, 'config' | 'log'>> = {},
): JobContext {
  return {
    config,
    log,
    repo:
      options.repo ??
      openRepository(config.effective.repositoryUrl.value, {
        kmsKeyId: config.repository.kmsKeyId,
        partSizeMiB: config.repository.partSizeMiB,
        queueSize: config.repository.queueSize,
        timeouts: config.repository,
      }),
    metrics: options.metrics ?? new NullMetrics(),
    env: options.env ?? process.env,
    now: options.now ?? (() => new Date()),
    signal: options.signal,
    progress: options.progress,
  };
}

export class UnknownTargetError extends OpsError {
  constructor(kind: string, name: string | undefined, known: string[]) {
    super(
      'UNKNOWN_TARGET',
      known.length === 0
        ? `no ${kind} is configured (add one under "${kind}" in the config file)`
        : `${kind} "${name}" is not configured; configured: ${known.join(', ')}`,
      { context: { kind, name, known }, exitCode: 64 },
    );
    this.name = 'UnknownTargetError';
  }
}

/** The configured items of one kind, or just the named one. */
export function selectTargets<T extends { name: string }>(kind: string, items: T[], name: string | undefined): T[] {
  if (name === undefined) {
    if (items.length === 0) throw new UnknownTargetError(kind, name, []);
    return items;
  }
  const found = items.filter((i) => i.name === name);
  if (found.length === 0) throw new UnknownTargetError(kind, name, items.map((i) => i.name));
  return found;
}

/** Exactly one item: the named one, or the only one configured. */
export function selectOne<T extends { name: string }>(kind: string, items: T[], name: string | undefined): T {
  const found = selectTargets(kind, items, name);
  if (found.length > 1) {
    throw new OpsError('AMBIGUOUS_TARGET', `several ${kind} entries are configured (${found.map((f) => f.name).join(', ')}): pick one with --name`, {
      exitCode: 64,
    });
  }
  return found[0]!;
}

/** The context's progress for one task with a known total, or undefined where nobody watches. */
export function progressOf(ctx: JobContext, task: string): ((bytes: number, total: number) => void) | undefined {
  const progress = ctx.progress;
  return progress ? (bytes, total) => progress(task, bytes, total) : undefined;
}

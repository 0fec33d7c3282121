import type { JobContext } from '../jobs/context.js';
import { inspectAws, type AwsClients, type AwsStatus, type AwsTarget } from './aws-status.js';
import { checkFreshness, type FreshnessReport } from './freshness.js';
import type { HealthState } from './healthcheck.js';
import { inspectServices, type PostgresService, type RedisService } from './services.js';

export interface StatusReport extends FreshnessReport {
  state: HealthState;
  /** Why the state is not OK, one line per reason. */
  reasons: string[];
  services: { postgres: PostgresService[]; redis: RedisService[] };
  aws?: AwsStatus | undefined;
  links?: { dashboard?: string | undefined; runbooks: string } | undefined;
}

/**
 * Seed 001's extended status: backups and partitions against their thresholds (the same
 * freshness the stale alarms use), the live services, and in AWS the schedules, the
 * newest run of each job and the alarms firing. One report for `opsctl status`, the
 * status Lambda, its HTML page and `--remote`.
 */
export async function buildStatusReport(ctx: JobContext, options: { aws?: { clients: AwsClients; target: AwsTarget } | undefined; links?: StatusReport['links'] } = {}): Promise<{ report: StatusReport; freshness: FreshnessReport }> {
  const [freshness, services, aws] = await Promise.all([checkFreshness(ctx), inspectServices(ctx), options.aws ? inspectAws(options.aws.clients, options.aws.target) : Promise.resolve(undefined)]);
  const { state, reasons } = judge(freshness, services, aws);
  return { report: { state, reasons, ...freshness, services, aws, links: options.links }, freshness };
}

/** A backup or partition state as a light: missing or unreadable is DOWN, any other problem DEGRADED. */
export function stateLight(state: string): HealthState {
  return state === 'ok' ? 'OK' : state === 'missing' || state === 'error' ? 'DOWN' : 'DEGRADED';
}

export function judge(freshness: FreshnessReport, services: StatusReport['services'], aws: AwsStatus | undefined): { state: HealthState; reasons: string[] } {
  const down: string[] = [];
  const degraded: string[] = [];
  const add = (state: string, reason: string) => {
    const light = stateLight(state);
    if (light === 'DOWN') down.push(reason);
    else if (light === 'DEGRADED') degraded.push(reason);
  };
  for (const b of freshness.backups) add(b.state, `${b.component}/${b.name}: ${b.detail}`);
  for (const p of freshness.partitions) add(p.state, `partitions ${p.database}: ${p.detail}`);
  for (const p of freshness.pitr ?? []) add(p.state, `pitr ${p.database}: ${p.detail}`);
  for (const s of services.postgres) if (!s.reachable) down.push(`postgres ${s.name} unreachable: ${s.detail}`);
  for (const s of services.redis) if (!s.reachable) degraded.push(`redis ${s.name} unreachable: ${s.detail}`);
  if (aws) {
    for (const a of aws.alarmsFiring) degraded.push(`alarm ${a.name} firing`);
    for (const s of aws.schedules) if (s.state !== 'ENABLED') degraded.push(`schedule ${s.name} is ${s.state}`);
    for (const t of aws.tasks) if (!t.ok) degraded.push(`task ${t.family} ${t.status} exit ${t.exitCode ?? '-'}: ${t.stoppedReason ?? ''}`.trim());
    for (const e of aws.errors) degraded.push(`AWS ${e}`);
  }
  return { state: down.length ? 'DOWN' : degraded.length ? 'DEGRADED' : 'OK', reasons: [...down, ...degraded] };
}

import type { OpsConfig } from '../../config/load.js';
import { maskUrl } from '../../util/mask.js';
import { EXIT, type CommandOutcome } from '../output.js';

/** The effective configuration with every connection string masked. */
export function redactedConfig(config: OpsConfig): Record<string, unknown> {
  const mask = (r: Record<string, { value: string; from: string } | undefined>) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v ? { value: maskUrl(v.value), from: v.from } : null]));
  const { effective, source, ...rest } = config;
  return {
    source,
    ...rest,
    effective: {
      repositoryUrl: effective.repositoryUrl,
      postgres: mask(effective.postgres),
      redis: mask(effective.redis),
      knowledge: effective.knowledge,
    },
  };
}

export function configValidateCommand(config: OpsConfig): CommandOutcome {
  const summary = {
    valid: true,
    source: config.source,
    postgres: config.postgres.map((d) => d.name),
    redis: config.redis.map((r) => r.name),
    knowledge: config.knowledge.map((k) => k.name),
    partitionedTables: config.postgres.flatMap((d) => (d.partitions?.tables ?? []).map((t) => `${d.name}:${t.table}`)),
    repository: config.effective.repositoryUrl.value,
  };
  const text = [
    `${config.source}: valid`,
    `  postgres:  ${summary.postgres.join(', ') || '-'}`,
    `  redis:     ${summary.redis.join(', ') || '-'}`,
    `  knowledge: ${summary.knowledge.join(', ') || '-'}`,
    `  partitioned tables: ${summary.partitionedTables.join(', ') || '-'}`,
    `  repository: ${summary.repository} (${config.effective.repositoryUrl.from})`,
  ].join('\n');
  return { exitCode: EXIT.ok, json: summary, text };
}

export function configShowCommand(config: OpsConfig): CommandOutcome {
  const json = redactedConfig(config);
  return { exitCode: EXIT.ok, json, text: JSON.stringify(json, null, 2) };
}

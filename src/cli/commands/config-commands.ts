import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../config/errors.js';
import type { OpsConfig } from '../../config/load.js';
import { diffConfig, pushDescription, SSM_ADVANCED_MAX_BYTES, type ConfigChange, type ConfigStore, type RemoteConfig } from '../../config/remote.js';
import { redactedConfig } from '../../config/carried.js';
import { configDstWarnings } from '../../config/dst.js';
import { EXIT, renderTable, type CommandOutcome } from '../output.js';

export function configValidateCommand(config: OpsConfig, now = new Date()): CommandOutcome {
  const warnings = configDstWarnings(config, now);
  const summary = {
    valid: true,
    source: config.source,
    postgres: config.postgres.map((d) => d.name),
    redis: config.redis.map((r) => r.name),
    knowledge: config.knowledge.map((k) => k.name),
    partitionedTables: config.postgres.flatMap((d) => (d.partitions?.tables ?? []).map((t) => `${d.name}:${t.table}`)),
    repository: config.effective.repositoryUrl.value,
    warnings: warnings.map((w) => w.message),
  };
  const text = [
    `${config.source}: valid`,
    `  postgres:  ${summary.postgres.join(', ') || '-'}`,
    `  redis:     ${summary.redis.join(', ') || '-'}`,
    `  knowledge: ${summary.knowledge.join(', ') || '-'}`,
    `  partitioned tables: ${summary.partitionedTables.join(', ') || '-'}`,
    `  repository: ${summary.repository} (${config.effective.repositoryUrl.from})`,
    ...warnings.map((w) => `warning: ${w.message}`),
  ].join('\n');
  return { exitCode: EXIT.ok, json: summary, text };
}

export function configShowCommand(config: OpsConfig): CommandOutcome {
  const json = redactedConfig(config);
  return { exitCode: EXIT.ok, json, text: JSON.stringify(json, null, 2) };
}

export function configChangesTable(changes: ConfigChange[]): string {
  if (changes.length === 0) return 'no differences';
  const show = (v: unknown) => (v === undefined ? '-' : JSON.stringify(v).slice(0, 80));
  return renderTable(changes, [
    { header: 'PATH', value: (c) => c.path },
    { header: 'CHANGE', value: (c) => c.change },
    { header: 'DEPLOYED', value: (c) => show(c.from) },
    { header: 'LOCAL', value: (c) => show(c.to) },
  ]);
}

/** The local file as stored in SSM (minified). */
async function readLocal(config: OpsConfig): Promise<{ doc: unknown; minified: string }> {
  const doc = JSON.parse(await readFile(config.source, 'utf8')) as unknown;
  return { doc, minified: JSON.stringify(doc) };
}

/** The deployed version against a local document, path by path. */
async function compareWithDeployed(local: unknown, store: ConfigStore): Promise<{ remote: RemoteConfig | undefined; changes: ConfigChange[] }> {
  const remote = await store.get();
  return { remote, changes: diffConfig(remote ? (JSON.parse(remote.text) as unknown) : {}, local) };
}

/** `opsctl config diff`: the deployed configuration against the local file. Exit 1 when they differ. */
export async function configDiffCommand(config: OpsConfig, store: ConfigStore): Promise<CommandOutcome> {
  const { remote, changes } = await compareWithDeployed((await readLocal(config)).doc, store);
  const head = remote ? `${store.label} version ${remote.version}${remote.description ? ` (${remote.description})` : ''} vs ${config.source}` : `${store.label} does not exist yet; everything in ${config.source} would be added`;
  return { exitCode: changes.length === 0 ? EXIT.ok : EXIT.degraded, json: { parameter: store.label, deployedVersion: remote?.version ?? null, changes }, text: `${head}\n\n${configChangesTable(changes)}` };
}

/**
 * `opsctl config push`: the local file, already validated by loading it (an invalid file
 * never gets here: exit 64 with every problem), replaces the deployed version.
 * Running functions pick it up within a minute; tasks at their next start.
 */
export async function configPushCommand(config: OpsConfig, store: ConfigStore): Promise<CommandOutcome> {
  const { doc, minified } = await readLocal(config);
  if (Buffer.byteLength(minified) > SSM_ADVANCED_MAX_BYTES) {
    throw new ConfigError(config.source, [{ path: '', message: `${Buffer.byteLength(minified)} bytes minified; an SSM parameter holds at most ${SSM_ADVANCED_MAX_BYTES}` }]);
  }
  const { remote, changes } = await compareWithDeployed(doc, store);
  if (remote && changes.length === 0) {
    return { exitCode: EXIT.ok, json: { parameter: store.label, pushed: false, version: remote.version, changes }, text: `${store.label} version ${remote.version} already holds ${config.source}: nothing pushed` };
  }
  const version = await store.put(minified, pushDescription(config.source));
  return {
    exitCode: EXIT.ok,
    json: { parameter: store.label, pushed: true, version, previousVersion: remote?.version ?? null, changes },
    text: `pushed ${config.source} to ${store.label} as version ${version}; functions pick it up within a minute, tasks at their next start\n\n${configChangesTable(changes)}`,
  };
}

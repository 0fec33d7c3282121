import { maskUrl } from '../util/mask.js';
import type { OpsConfig } from './load.js';

/** The effective configuration with every connection string masked (`opsctl config show`). */
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

/**
 * What every backup carries in its manifest: the configuration it was taken with, so the
 * repository alone says what it holds, where each target lived and how it was backed up.
 * Passwords are never in the configuration (refused inline); connection strings are
 * masked all the same, and the file's own path is left out (it means nothing elsewhere).
 */
export function carriedConfig(config: OpsConfig): Record<string, unknown> {
  const { source: _source, ...rest } = redactedConfig(config);
  return rest;
}

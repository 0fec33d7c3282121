import os from 'node:os';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { OpsError } from '../errors.js';

/** Where a deployed stack keeps its configuration: the SSM parameter `/<stackName>/ops-config`. */
export interface RemoteConfig {
  text: string;
  version: number;
  lastModified?: Date | undefined;
  description?: string | undefined;
}

export interface ConfigStore {
  readonly label: string;
  get(): Promise<RemoteConfig | undefined>;
  put(text: string, description: string): Promise<number>;
}

/** SSM standard parameters hold 4 KiB; larger configs go to the advanced tier, which holds 8 KiB. */
export const SSM_STANDARD_MAX_BYTES = 4096;
export const SSM_ADVANCED_MAX_BYTES = 8192;

export function ssmConfigStore(name: string, client: Pick<SSMClient, 'send'>): ConfigStore {
  return {
    label: `ssm:${name}`,
    async get() {
      const { GetParameterCommand, DescribeParametersCommand } = await import('@aws-sdk/client-ssm');
      try {
        const out = await client.send(new GetParameterCommand({ Name: name }));
        const p = out.Parameter;
        if (!p?.Value) return undefined;
        const meta = await client.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Values: [name] }] })).catch(() => undefined);
        return { text: p.Value, version: p.Version ?? 0, lastModified: p.LastModifiedDate, description: meta?.Parameters?.[0]?.Description };
      } catch (error) {
        if ((error as { name?: string }).name === 'ParameterNotFound') return undefined;
        throw new OpsError('CONFIG_STORE_FAILED', `cannot read SSM parameter ${name}: ${(error as Error).message}`, { cause: error });
      }
    },
    async put(text, description) {
      const { PutParameterCommand } = await import('@aws-sdk/client-ssm');
      const out = await client.send(
        new PutParameterCommand({ Name: name, Value: text, Type: 'String', Overwrite: true, Description: description.slice(0, 1024), Tier: Buffer.byteLength(text) > SSM_STANDARD_MAX_BYTES ? 'Advanced' : 'Standard' }),
      );
      return out.Version ?? 0;
    },
  };
}

/** Who pushed, from where: CloudTrail records the IAM identity; this line is for people reading the parameter. */
export function pushDescription(source: string, now = new Date()): string {
  return `opsctl config push by ${os.userInfo().username}@${os.hostname()} from ${source} at ${now.toISOString()}`;
}

export interface ConfigChange {
  path: string;
  change: 'added' | 'removed' | 'changed';
  from?: unknown;
  to?: unknown;
}

/** Differences between two configuration documents, by JSON path (arrays by index), in document order. */
export function diffConfig(from: unknown, to: unknown, at = ''): ConfigChange[] {
  if (isContainer(from) && isContainer(to) && Array.isArray(from) === Array.isArray(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])];
    return keys.flatMap((k) => {
      const p = at ? `${at}.${k}` : k;
      const a = (from as Record<string, unknown>)[k];
      const b = (to as Record<string, unknown>)[k];
      if (a === undefined) return [{ path: p, change: 'added' as const, to: b }];
      if (b === undefined) return [{ path: p, change: 'removed' as const, from: a }];
      return diffConfig(a, b, p);
    });
  }
  return JSON.stringify(from) === JSON.stringify(to) ? [] : [{ path: at || '(root)', change: 'changed', from, to }];
}

function isContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  return typeof v === 'object' && v !== null;
}

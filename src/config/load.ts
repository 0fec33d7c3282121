import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as z from 'zod';
import { parseRepositoryUrl } from '../repository/url.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { configSchema, crossEntryProblems, type RawOpsConfig } from './schema.js';

export const CONFIG_FILE_NAME = 'ops.config.json';

/** The package root: where the default `ops.config.json` lives when the cwd has none. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type Env = Record<string, string | undefined>;

export interface ValueSource {
  value: string;
  /** `config` or `env NAME`: shown to operators so they know which setting won. */
  from: string;
}

export type OpsConfig = RawOpsConfig & {
  /** Absolute path of the file this came from. */
  readonly source: string;
  /** Effective settings after environment overrides. */
  readonly effective: {
    repositoryUrl: ValueSource;
    postgres: Record<string, ValueSource | undefined>;
    redis: Record<string, ValueSource | undefined>;
    knowledge: Record<string, ValueSource | undefined>;
  };
};

/** Where to read configuration from: --config, then OPS_CONFIG, then ./ops.config.json, then the package's own. */
export function resolveConfigPath(explicit: string | undefined, env: Env = process.env, cwd = process.cwd()): string {
  if (explicit) return path.resolve(cwd, explicit);
  if (env.OPS_CONFIG) return path.resolve(cwd, env.OPS_CONFIG);
  const local = path.join(cwd, CONFIG_FILE_NAME);
  if (existsSync(local)) return local;
  return path.join(PACKAGE_ROOT, CONFIG_FILE_NAME);
}

export function loadConfig(file: string, env: Env = process.env, cwd = process.cwd()): OpsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${(cause as NodeJS.ErrnoException).code ?? cause})` }], cause);
  }
  return parseConfig(text, file, env, cwd);
}

export function parseConfig(text: string, source: string, env: Env = process.env, cwd = process.cwd()): OpsConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(source, [{ path: '', message: `not valid JSON: ${withLineColumn((cause as Error).message, text)}` }], cause);
  }
  const parsed = configSchema.safeParse(json);
  const problems: ConfigProblem[] = [...(parsed.success ? [] : zodProblems(parsed.error)), ...crossEntryProblems(json)];
  const rawUrl = (json as { repository?: { url?: unknown } })?.repository?.url;
  if (!parsed.success && typeof rawUrl === 'string') {
    try {
      parseRepositoryUrl(absolutiseFileUrl(rawUrl, path.dirname(source)));
    } catch (error) {
      problems.push({ path: 'repository.url', message: (error as Error).message });
    }
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(source, problems);
  return applyEnvironment(parsed.data, source, env, cwd);
}

/** "… at position 67" as a person looks for it: line and column (newer Node says so itself). */
function withLineColumn(message: string, text: string): string {
  if (/line \d+ column \d+/.test(message)) return message;
  const at = /position (\d+)/.exec(message);
  if (!at) return message;
  const before = text.slice(0, Number(at[1]));
  const line = before.split('\n').length;
  const column = Number(at[1]) - before.lastIndexOf('\n');
  return `${message} (line ${line} column ${column})`;
}

function zodProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

/**
 * Environment variables override connection settings (DESIGN.md "Interfaces"). The
 * first entry of each kind answers to the well-known variable unless it names its own.
 */
/** The URL schemes an environment override of a connection must have. */
const SCHEMES: Record<string, { pattern: RegExp; example: string }> = {
  postgres: { pattern: /^postgres(ql)?:\/\/\S+/i, example: 'postgresql://user@host:5432/dbname' },
  redis: { pattern: /^rediss?:\/\/\S+/i, example: 'redis://host:6379 (rediss:// for TLS)' },
};

function applyEnvironment(raw: RawOpsConfig, source: string, env: Env, cwd: string): OpsConfig {
  const problems: ConfigProblem[] = [];
  const baseDir = path.dirname(source);

  const repositoryUrl: ValueSource = env.OPS_REPOSITORY_URL
    ? { value: absolutiseFileUrl(env.OPS_REPOSITORY_URL, cwd), from: 'env OPS_REPOSITORY_URL' }
    : { value: absolutiseFileUrl(raw.repository.url, baseDir), from: 'config' };
  try {
    parseRepositoryUrl(repositoryUrl.value);
  } catch (error) {
    problems.push({ path: repositoryUrl.from === 'config' ? 'repository.url' : 'OPS_REPOSITORY_URL', message: (error as Error).message });
  }

  const pick = <T extends { name: string; urlEnv?: string | undefined }>(
    items: T[],
    fallbackEnv: string,
    configured: (item: T) => string | undefined,
    field: string,
  ): Record<string, ValueSource | undefined> => {
    const out: Record<string, ValueSource | undefined> = {};
    items.forEach((item, i) => {
      const envName = item.urlEnv ?? (i === 0 ? fallbackEnv : undefined);
      const fromEnv = envName ? env[envName] : undefined;
      if (fromEnv) {
        out[item.name] = { value: fromEnv, from: `env ${envName}` };
        // Checked like the file's own value: "127.0.0.1:5432/db" would otherwise fail later as a
        // DNS lookup of some part of it. The value is not quoted (it may hold a password).
        const scheme = SCHEMES[field];
        if (scheme && !scheme.pattern.test(fromEnv)) problems.push({ path: envName!, message: `is not a ${scheme.example.split(':')[0]}:// URL; give one like ${scheme.example}` });
      }
      else {
        const value = configured(item);
        out[item.name] = value ? { value, from: 'config' } : undefined;
        if (!value) problems.push({ path: `${field}.${i}`, message: `no ${field === 'knowledge' ? 'path' : 'url'}: set it here or in ${envName ?? 'urlEnv'}` });
      }
    });
    return out;
  };

  const postgres = pick(raw.postgres, 'DATABASE_URL', (d) => d.url, 'postgres');
  const redis = pick(raw.redis, 'REDIS_URL', (r) => r.url, 'redis');
  const knowledge = pick(
    raw.knowledge.map((k) => ({ ...k, urlEnv: k.pathEnv })),
    'OPS_KNOWLEDGE_PATH',
    (k) => (k.path && !k.path.startsWith('s3://') ? path.resolve(baseDir, k.path) : k.path),
    'knowledge',
  );
  for (const [key, value] of Object.entries(knowledge)) {
    if (value && value.from !== 'config' && !value.value.startsWith('s3://')) knowledge[key] = { ...value, value: path.resolve(cwd, value.value) };
  }

  if (problems.length > 0) throw new ConfigError(source, problems);
  return { ...raw, source, effective: { repositoryUrl, postgres, redis, knowledge } };
}

/** `file://./rel` is relative to `base`; everything else passes through. */
export function absolutiseFileUrl(url: string, base: string): string {
  const m = /^file:\/\/(\.{1,2}\/.*|\.{1,2})$/.exec(url);
  if (!m?.[1]) return url;
  return `file://${path.resolve(base, m[1])}`;
}

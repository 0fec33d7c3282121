import pg from 'pg';
import { PostgresConnectionError } from './errors.js';

export type PgClient = pg.Client;

/**
 * Connect or fail with a message that names the (masked) target and what to check.
 * `timeoutMs` bounds the connection and, when given, every query (health and status probes).
 */
export async function connectPostgres(url: string, applicationName = 'ops-automation', options: { timeoutMs?: number } = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: options.timeoutMs ?? 10_000, query_timeout: options.timeoutMs });
  // A connection dropped later must surface through the pending query, not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new PostgresConnectionError(url, error);
  }
  return client;
}

export async function withPostgres<T>(url: string, fn: (client: pg.Client) => Promise<T>, applicationName?: string, options: { timeoutMs?: number } = {}): Promise<T> {
  const client = await connectPostgres(url, applicationName, options);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** libpq settings for pg_dump/pg_restore/psql: the password travels in the environment, never in argv. */
export function libpqEnvironment(url: string, base: NodeJS.ProcessEnv = process.env): { dbname: string; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  const env: NodeJS.ProcessEnv = { ...base, PGAPPNAME: 'ops-automation', PGCONNECT_TIMEOUT: base.PGCONNECT_TIMEOUT ?? '10' };
  if (password) env.PGPASSWORD = password;
  return { dbname: parsed.toString(), env };
}

/** Same server, another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

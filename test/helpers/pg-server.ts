import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './prometheus.js';
import { makeTempDir } from './tmp.js';

export interface TestPostgresServer {
  port: number;
  url: string;
  dir: string;
  stop(): void;
  start(): void;
  remove(): Promise<void>;
}

/**
 * A server tool of the PostgreSQL these tests run on: OPS_TEST_PG_BINDIR when the matrix
 * (scripts/test-pg-majors.sh) points at another major, else the host's newest.
 */
export function pgBin(tool: string): string {
  const dir = process.env.OPS_TEST_PG_BINDIR;
  if (dir) return path.join(dir, tool);
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const p = `/usr/lib/postgresql/${v}/bin/${tool}`;
    if (existsSync(p)) return p;
  }
  throw new Error(`${tool} not found under /usr/lib/postgresql`);
}

/** Run as the postgres user when we are root (initdb refuses root). */
function asPostgres(args: string[]): void {
  const cmd = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...args] : args;
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr.toString()}`);
}

/**
 * A private PostgreSQL server (initdb in a temp dir, its own port, trust auth), for tests
 * that must stop a server or need a replica: never the machine's own on 5432.
 */
export async function startPostgresServer(options: { standbyOf?: TestPostgresServer; settings?: Record<string, string>; port?: number; /** Another major's server tools (a PostgreSQL 16 server, say). */ bindir?: string } = {}): Promise<TestPostgresServer> {
  const bin = (tool: string) => (options.bindir ? path.join(options.bindir, tool) : pgBin(tool));
  const dir = await makeTempDir('ops-pg-');
  if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  const port = options.port ?? (await freePort());
  const data = path.join(dir, 'data');
  if (options.standbyOf) {
    // A real streaming replica: a base backup of the primary with standby.signal and primary_conninfo (-R).
    asPostgres([bin('pg_basebackup'), '-D', data, '-R', '-h', '127.0.0.1', '-p', String(options.standbyOf.port), '-U', 'postgres', '-X', 'stream', '--no-sync']);
  } else {
    asPostgres([bin('initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  }
  const server: TestPostgresServer = {
    port,
    dir,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start() {
      // Extra settings go to postgresql.auto.conf (below), not the command line: quoting archive_command through pg_ctl -o is fragile.
      asPostgres([bin('pg_ctl'), '-D', data, '-w', '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
    },
    stop() {
      asPostgres([bin('pg_ctl'), '-D', data, '-w', '-m', 'immediate', 'stop']);
    },
    async remove() {
      try {
        server.stop();
      } catch {
        // already stopped
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (options.settings) {
    const lines = Object.entries(options.settings).map(([k, v]) => `${k} = '${v.replace(/'/g, "''")}'`);
    appendFileSync(path.join(data, 'postgresql.auto.conf'), `${lines.join('\n')}\n`);
  }
  server.start();
  return server;
}

/** One statement on a server of this file's kind (loopback, user postgres), the rows back. */
export async function sqlOn<T extends pg.QueryResultRow>(port: number, text: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

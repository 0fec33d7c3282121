import type pg from 'pg';
import { writeBackup, writtenManifest } from '../backup/engine.js';
import type { Manifest } from '../backup/manifest.js';
import { zstdVersion } from '../backup/codec.js';
import type { Log } from '../log.js';
import { libpqEnvironment } from '../postgres/connect.js';
import { quoteQualified } from '../postgres/identifiers.js';
import { startTool } from '../process/tool.js';
import { toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';

/** Archives live beside the database's backups, under a path that is not a backup id: retention never touches them. */
export function archiveName(database: string, partition: string): string {
  return `${database}/archive/${partition}`;
}

/**
 * Stream a partition out with COPY (text format: one line per row) through zstd into
 * the repository, checksummed, manifest last. The caller drops the partition only after
 * this returns.
 */
export async function archivePartition(
  client: pg.Client,
  url: string,
  database: string,
  schema: string,
  partition: string,
  deps: { repo: Repository; log: Log; env?: NodeJS.ProcessEnv },
): Promise<Manifest> {
  const table = quoteQualified(schema, partition);
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ONLY ${table}`);
  const rowCount = Number(rows[0]?.n ?? 0);
  const { dbname, env } = libpqEnvironment(url, deps.env ?? process.env);
  const tools = { psql: 'psql', zstd: await zstdVersion() };
  const { manifest } = await writeBackup({
    repo: deps.repo,
    component: 'postgres',
    name: archiveName(database, partition),
    payloadName: `${partition}.copy`,
    streamCodec: 'zstd',
    encode: { level: 3, threads: 2 },
    log: deps.log,
    start() {
      const copy = startTool('psql COPY', toolPath('psql', env), ['--no-psqlrc', '--quiet', '-v', 'ON_ERROR_STOP=1', `--dbname=${dbname}`, '-c', `COPY ${table} TO STDOUT`], { env });
      return { stream: copy.child.stdout!, producers: [copy.done], stop: () => copy.kill(), fromProcess: true };
    },
    describe(written) {
      return {
        ...writtenManifest(written, 'postgres', archiveName(database, partition), { streamCodec: 'zstd', compression: 'zstd -3', format: 'postgres-copy-text' }),
        tools,
        source: { database, schema, partition },
        details: { kind: 'partition-archive', rows: rowCount, restore: `zstd -dc <payload> | psql -c "COPY ${table} FROM STDIN"` },
      };
    },
  });
  return manifest;
}

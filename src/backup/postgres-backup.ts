import type { Log } from '../log.js';
import { connectPostgres, libpqEnvironment } from '../postgres/connect.js';
import { PgDumpTooOldError } from '../postgres/errors.js';
import { listTables, serverInfo } from '../postgres/introspect.js';
import { runTool, startTool } from '../process/tool.js';
import { parsePgToolVersion, toolPath } from '../process/tools.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { zstdVersion } from './codec.js';
import { writeBackup, writtenManifest } from './engine.js';
import type { Manifest, StreamCodec } from './manifest.js';

export type PostgresCodec = 'zstd' | 'gzip' | 'none';

export interface PostgresBackupSettings {
  codec: PostgresCodec;
  level?: number | undefined;
  threads: number;
}

export interface PostgresBackupTarget {
  name: string;
  url: string;
}

export interface BackupDeps {
  repo: Repository;
  log: Log;
  now?: () => Date;
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number) => void) | undefined;
  /** Carried in the manifest (src/config/carried.ts). */
  config?: Record<string, unknown> | undefined;
  env?: NodeJS.ProcessEnv;
}

export const PG_DUMP_PAYLOAD = 'db.dump';

/**
 * How each codec is produced. `gzip` is pg_dump's own compression inside the custom
 * format (readers need nothing extra); `zstd` is an uncompressed custom-format dump
 * piped through a parallel zstd, which measured faster and smaller (doc/performance.md).
 */
export function pgDumpCompression(settings: PostgresBackupSettings): { zFlag: number; streamCodec: StreamCodec; summary: string } {
  switch (settings.codec) {
    case 'gzip': {
      const level = settings.level ?? 6;
      return { zFlag: level, streamCodec: 'none', summary: `pg_dump gzip -Z${level}` };
    }
    case 'zstd': {
      const level = settings.level ?? 1;
      return { zFlag: 0, streamCodec: 'zstd', summary: `pg_dump -Z0 | zstd -${level} -T${settings.threads}` };
    }
    case 'none':
      return { zFlag: 0, streamCodec: 'none', summary: 'none' };
  }
}

export async function backupPostgres(
  target: PostgresBackupTarget,
  settings: PostgresBackupSettings,
  deps: BackupDeps,
): Promise<Manifest> {
  const env = deps.env ?? process.env;
  const pgDump = toolPath('pg_dump', env);

  const compression = pgDumpCompression(settings);
  // Catalogue (server version, tables for the manifest) and tool versions, concurrently.
  const [catalogue, dumpVersion, zstd] = await Promise.all([
    (async () => {
      const client = await connectPostgres(target.url, 'ops-automation-backup');
      try {
        return { info: await serverInfo(client), tables: await listTables(client) };
      } finally {
        await client.end().catch(() => undefined);
      }
    })(),
    runTool('pg_dump', pgDump, ['--version'], env).then(parsePgToolVersion),
    compression.streamCodec === 'zstd' ? zstdVersion() : Promise.resolve(undefined),
  ]);
  const { info, tables } = catalogue;
  if (dumpVersion.major < info.major) throw new PgDumpTooOldError('pg_dump', dumpVersion.major, info.major);
  const tools: Record<string, string> = { pg_dump: dumpVersion.version };
  if (zstd) tools.zstd = zstd;

  const { dbname, env: childEnv } = libpqEnvironment(target.url, env);
  const { manifest } = await writeBackup({
    config: deps.config,
    repo: deps.repo,
    component: 'postgres',
    name: target.name,
    payloadName: PG_DUMP_PAYLOAD,
    streamCodec: compression.streamCodec,
    encode: { level: settings.level ?? 1, threads: settings.threads },
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    signal: deps.signal,
    onProgress: deps.onProgress,
    sizeHint: info.databaseBytes,
    start() {
      const dump = startTool('pg_dump', pgDump, ['--format=custom', `--compress=${compression.zFlag}`, '--no-password', `--dbname=${dbname}`], {
        env: childEnv,
      });
      return { stream: dump.child.stdout!, producers: [dump.done], stop: () => dump.kill(), fromProcess: true };
    },
    describe(written) {
      return {
        ...writtenManifest(written, 'postgres', target.name, { streamCodec: compression.streamCodec, compression: compression.summary, format: 'pg_dump-custom' }),
        tools,
        source: { database: info.database, serverVersion: info.version, url: maskUrl(target.url) },
        tables,
      };
    },
  });
  return manifest;
}

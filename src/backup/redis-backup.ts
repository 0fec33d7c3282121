import { Readable } from 'node:stream';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { zstdVersion } from './codec.js';
import { writeBackup, writtenManifest } from './engine.js';
import type { Manifest } from './manifest.js';
import type { LogicalStats } from '../redis/logical-dump.js';
import { syncRdb } from '../redis/rdb-sync.js';

export interface RedisBackupTarget {
  name: string;
  url: string;
  mode: 'rdb' | 'logical';
}

export interface RedisBackupDeps {
  repo: Repository;
  log: Log;
  now?: () => Date;
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number) => void) | undefined;
  /** Carried in the manifest (src/config/carried.ts). */
  config?: Record<string, unknown> | undefined;
}

export const RDB_PAYLOAD = 'dump.rdb';
export const LOGICAL_PAYLOAD = 'keys.opsrdl';

/**
 * One Redis backup, through the same engine as PostgreSQL (id, codec, checksum, gate,
 * manifest last). `rdb`: the server's own point-in-time snapshot over the replication
 * protocol. `logical`: SCAN + DUMP + PTTL, for servers that refuse SYNC.
 */
export async function backupRedis(target: RedisBackupTarget, deps: RedisBackupDeps): Promise<Manifest> {
  // Connection, credentials and version are checked by the first thing start() opens;
  // nothing is written before it succeeds.
  const zstd = zstdVersion();
  zstd.catch(() => undefined);
  const stats: LogicalStats = { keys: 0, vanished: 0, dbs: [], nodes: [], redisVersion: 'unknown', rdbVersion: 0 };
  let rdbHeader = '';

  const { manifest } = await writeBackup({
    config: deps.config,
    repo: deps.repo,
    component: 'redis',
    name: target.name,
    payloadName: target.mode === 'rdb' ? RDB_PAYLOAD : LOGICAL_PAYLOAD,
    streamCodec: 'zstd',
    // One zstd thread: the Redis server is single-threaded and needs the other core.
    encode: { level: 1, threads: 1 },
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    signal: deps.signal,
    onProgress: deps.onProgress,
    async start() {
      if (target.mode === 'rdb') {
        const sync = await syncRdb(target.url);
        stats.redisVersion = sync.redisVersion;
        sync.stream.once('data', (first: Buffer) => (rdbHeader = first.subarray(0, 9).toString('latin1')));
        return { stream: sync.stream, producers: [sync.done], stop: () => sync.stop() };
      }
      let finish!: () => void;
      let fail!: (e: unknown) => void;
      const generated = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));
      generated.catch(() => undefined);
      // Loaded here: rdb mode never needs the Redis client library (50 ms of start-up).
      const { logicalDump } = await import('../redis/logical-dump.js');
      const generator = logicalDump(target.url, stats);
      const stream = Readable.from(
        (async function* () {
          try {
            yield* generator;
            finish();
          } catch (error) {
            fail(error);
            throw error;
          }
        })(),
        { objectMode: false, highWaterMark: 1 << 20 },
      );
      return { stream, producers: [generated], stop: () => stream.destroy(new Error('stopped')) };
    },
    async describe(written) {
      const tools = { redis: stats.redisVersion, zstd: await zstd };
      const rdbVersion = target.mode === 'rdb' ? Number(rdbHeader.slice(5)) || 0 : stats.rdbVersion;
      return {
        ...writtenManifest(written, 'redis', target.name, { streamCodec: 'zstd', compression: 'zstd -1 -T1', format: target.mode === 'rdb' ? 'redis-rdb' : 'ops-redis-logical/1' }),
        tools,
        source: { url: maskUrl(target.url), redisVersion: stats.redisVersion },
        details:
          target.mode === 'rdb'
            ? { mode: 'rdb', rdbVersion }
            : { mode: 'logical', rdbVersion, keys: stats.keys, vanished: stats.vanished, dbs: stats.dbs, nodes: stats.nodes },
      };
    },
  });
  return manifest;
}

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cluster, type Redis } from 'ioredis';
import type { BackupEntry } from '../backup/catalog.js';
import { decoder } from '../backup/codec.js';
import type { Log } from '../log.js';
import { openRedis } from '../redis/client.js';
import { parseRedisUrl } from '../redis/endpoint.js';
import { RedisConnectionError } from '../redis/errors.js';
import { LogicalReader, dumpFooter, type LogicalRecord } from '../redis/logical-format.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { HashingStream, holdLastUntil } from '../util/streams.js';
import { RestoreChecksumError, RestoreError, RestoreRefusedError } from './errors.js';

export interface RedisRestoreResult {
  backupId: string;
  target: string;
  mode: 'logical' | 'rdb';
  restored: number;
  /** Keys whose absolute expiry had passed: skipped, as Redis itself would have dropped them. */
  expiredSkipped: number;
  seconds: number;
  placedFile?: string;
}

/** The payload, decoded, with its sha256 checked before the last bytes are released. */
async function decodedPayload(entry: BackupEntry, repo: Repository) {
  const manifest = entry.manifest!;
  const hasher = new HashingStream();
  const gate = holdLastUntil(async () => {
    const actual = hasher.digest();
    if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
  });
  const source = await repo.get(manifest.payload.key);
  const dec = decoder(manifest.payload.streamCodec);
  return { source, hasher, gate, dec };
}

/** Where RESTORE commands go: one server (any database) or a cluster (database 0, routed by slot). */
interface RestoreTarget {
  cluster: boolean;
  /** RDB version of DUMP payloads the target writes: RESTORE refuses newer ones. */
  rdbVersion(): Promise<number>;
  /** Keys already there, over every database (every primary of a cluster). */
  keyCount(): Promise<number>;
  restore(db: number, commands: (string | number | Buffer)[][]): Promise<void>;
  close(): void;
}

const RDB_PROBE_KEY = () => `ops-automation:rdb-version-probe:${process.pid}:${Date.now()}`;

function countKeys(info: string): number {
  return [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

function failedReply(replies: [Error | null, unknown][] | null): void {
  const failed = (replies ?? []).find(([e]) => e);
  if (failed) throw new RestoreError('REDIS_RESTORE_FAILED', `RESTORE failed: ${(failed[0] as Error).message}`);
}

async function openTarget(url: string): Promise<RestoreTarget> {
  const admin = await openRedis(url);
  const probeVersion = async (c: Redis | Cluster) => {
    const probe = RDB_PROBE_KEY();
    await c.set(probe, '1', 'PX', 10_000);
    const dump = await c.dumpBuffer(probe);
    await c.del(probe);
    return dump ? dumpFooter(dump).rdbVersion : 0;
  };
  if (!/cluster_enabled:1/.test(await admin.info('cluster'))) {
    const clients = new Map<number, Redis>([[0, admin]]);
    return {
      cluster: false,
      rdbVersion: () => probeVersion(admin),
      keyCount: async () => countKeys(await admin.info('keyspace')),
      async restore(db, commands) {
        let client = clients.get(db);
        if (!client) {
          client = await openRedis(url, db);
          clients.set(db, client);
        }
        const p = client.pipeline();
        for (const args of commands) p.call('RESTORE', ...args);
        failedReply(await p.exec());
      },
      close: () => clients.forEach((c) => c.disconnect()),
    };
  }
  // A cluster: the client routes each RESTORE to its slot's primary and batches the
  // commands per node (auto-pipelining); a key whose slot moves meanwhile is redirected.
  admin.disconnect();
  const { username, password } = parseRedisUrl(url);
  const { hostname, port } = new URL(url);
  const cluster = new Cluster([{ host: hostname, port: Number(port || 6379) }], {
    enableAutoPipelining: true,
    enableOfflineQueue: true,
    clusterRetryStrategy: () => null,
    redisOptions: { username, password, maxRetriesPerRequest: 0, connectTimeout: 10_000, ...(url.startsWith('rediss:') ? { tls: {} } : {}) },
  });
  let lastError: Error | undefined;
  cluster.on('error', (e: Error) => (lastError = e));
  try {
    await cluster.ping();
  } catch (error) {
    cluster.disconnect();
    throw new RedisConnectionError(url, lastError ?? error);
  }
  return {
    cluster: true,
    rdbVersion: () => probeVersion(cluster),
    keyCount: async () => (await Promise.all(cluster.nodes('master').map((n) => n.info('keyspace')))).reduce((sum, info) => sum + countKeys(info), 0),
    async restore(_db, commands) {
      const replies = await Promise.allSettled(commands.map((args) => cluster.call('RESTORE', ...args)));
      const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw new RestoreError('REDIS_RESTORE_FAILED', `RESTORE failed: ${(failed.reason as Error).message}`);
    },
    close: () => cluster.disconnect(),
  };
}

/**
 * Logical archives go back through RESTORE with absolute TTLs (ABSTTL), into one server or
 * a whole cluster. The target must be empty unless `confirm` repeats its address
 * (host:port) or `replace` is set; a target whose RDB version is older than the archive's,
 * or a cluster asked to take databases other than 0, is refused before anything is written.
 */
export async function restoreRedisLogical(
  entry: BackupEntry,
  targetUrl: string,
  options: { confirm?: string | undefined; replace?: boolean; now?: () => number },
  deps: { repo: Repository; log: Log },
): Promise<RedisRestoreResult> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const address = `${new URL(targetUrl).hostname}:${new URL(targetUrl).port || 6379}`;
  const details = (entry.manifest?.details ?? {}) as { rdbVersion?: number; dbs?: number[] };
  const target = await openTarget(targetUrl);
  try {
    const archiveVersion = Number(details.rdbVersion ?? 0);
    const targetVersion = await target.rdbVersion();
    if (archiveVersion > targetVersion) {
      throw new RestoreError('REDIS_RDB_TOO_NEW', `the backup holds RDB version ${archiveVersion} payloads but ${maskUrl(targetUrl)} speaks version ${targetVersion}: RESTORE would refuse them; restore into a Redis at least as new as the source`);
    }
    const otherDbs = (details.dbs ?? []).filter((db) => db !== 0);
    if (target.cluster && otherDbs.length > 0) {
      throw new RestoreError('REDIS_CLUSTER_DBS', `the backup holds keys of database(s) ${otherDbs.join(', ')} but ${address} is a cluster, which has database 0 only: restore into a standalone server`);
    }
    const existing = await target.keyCount();
    if (existing > 0 && !options.replace && options.confirm !== address) throw new RestoreRefusedError(address, `${existing} keys`);

    const { source, hasher, gate, dec } = await decodedPayload(entry, deps.repo);
    let restored = 0;
    let expiredSkipped = 0;
    let batch: LogicalRecord[] = [];
    const flush = async () => {
      const byDb = new Map<number, (string | number | Buffer)[][]>();
      for (const r of batch) {
        const args: (string | number | Buffer)[] = [r.key, r.expireAtMs === -1 ? 0 : r.expireAtMs, r.payload];
        if (r.expireAtMs !== -1) args.push('ABSTTL');
        if (options.replace) args.push('REPLACE');
        const list = byDb.get(r.db);
        if (list) list.push(args);
        else byDb.set(r.db, [args]);
      }
      batch = [];
      for (const [db, commands] of byDb) {
        await target.restore(db, commands);
        restored += commands.length;
      }
    };
    const sink = new Writable({
      objectMode: true,
      write(record: LogicalRecord, _e, cb) {
        if (record.expireAtMs !== -1 && record.expireAtMs <= now()) {
          expiredSkipped += 1;
          return cb();
        }
        batch.push(record);
        if (batch.length >= 1000) flush().then(() => cb(), cb);
        else cb();
      },
      final(cb) {
        flush().then(() => cb(), cb);
      },
    });
    const reader = new LogicalReader();
    if (dec) await Promise.all([pipeline(source, hasher, gate, dec.input), pipeline(dec.output, reader, sink), dec.done]);
    else await pipeline(source, hasher, gate, reader, sink);
    return { backupId: entry.id, target: address, mode: 'logical', restored, expiredSkipped, seconds: (Date.now() - started) / 1000 };
  } finally {
    target.close();
  }
}

/**
 * RDB backups are restored by a stopped server reading them at start-up: this places
 * `dump.rdb` (decoded, checksum-checked, written atomically) in the server's `dir`.
 */
export async function placeRdbFile(entry: BackupEntry, targetDir: string, options: { confirm?: string | undefined }, deps: { repo: Repository }): Promise<RedisRestoreResult> {
  const started = Date.now();
  const dir = path.resolve(targetDir);
  const file = path.join(dir, 'dump.rdb');
  const exists = await stat(file).then(() => true, () => false);
  if (exists && options.confirm !== dir && options.confirm !== targetDir) throw new RestoreRefusedError(targetDir, 'dump.rdb exists');
  await mkdir(dir, { recursive: true });
  const partial = `${file}.ops-partial`;
  const { source, hasher, gate, dec } = await decodedPayload(entry, deps.repo);
  try {
    const out = createWriteStream(partial);
    if (dec) await Promise.all([pipeline(source, hasher, gate, dec.input), pipeline(dec.output, out), dec.done]);
    else await pipeline(source, hasher, gate, out);
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return { backupId: entry.id, target: dir, mode: 'rdb', restored: 1, expiredSkipped: 0, seconds: (Date.now() - started) / 1000, placedFile: file };
}

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Cluster } from 'ioredis';
import type { BackupEntry } from '../backup/catalog.js';
import type { Log } from '../log.js';
import { RespConnection } from '../redis/resp-connection.js';
import { RespReplyError } from '../redis/resp.js';
import { parseRedisUrl } from '../redis/endpoint.js';
import { RedisConnectionError } from '../redis/errors.js';
import { LogicalReader, dumpFooter, type LogicalRecord } from '../redis/logical-format.js';
import type { Repository } from '../repository/repository.js';
import { maskUrl } from '../util/mask.js';
import { RestoreError, RestoreRefusedError } from './errors.js';
import { pipeCheckedPayload, provePayload, type Progress } from './payload.js';

export interface RedisRestoreResult {
  backupId: string;
  target: string;
  mode: 'logical' | 'rdb';
  restored: number;
  /** Keys whose absolute expiry had passed: skipped, as Redis itself would have dropped them. */
  expiredSkipped: number;
  /**
   * Records of a key this restore had already written (SCAN may list a key twice while the
   * source rehashes): skipped. Only counted when the target was empty at the start.
   */
  duplicatesSkipped: number;
  seconds: number;
  placedFile?: string;
}

/** Where RESTORE commands go: one server (any database) or a cluster (database 0, routed by slot). */
interface RestoreTarget {
  cluster: boolean;
  /** RDB version of DUMP payloads the target writes: RESTORE refuses newer ones. */
  rdbVersion(): Promise<number>;
  /** Keys already there, over every database (every primary of a cluster). */
  keyCount(): Promise<number>;
  /** RESTOREs; with `tolerateBusy`, BUSYKEY replies are counted and returned, not thrown. */
  restore(db: number, commands: (string | number | Buffer)[][], tolerateBusy: boolean): Promise<number>;
  close(): void;
}

const RDB_PROBE_KEY = () => `ops-automation:rdb-version-probe:${process.pid}:${Date.now()}`;

/** The BUSYKEY replies to count as duplicates, or the first error that fails the restore. */
function restoreOutcome(errors: Error[], tolerateBusy: boolean): number {
  const failed = errors.find((e) => !(tolerateBusy && e.message.startsWith('BUSYKEY')));
  if (failed) {
    // A key the target already holds: the fix is a flag, so say which.
    const hint = failed.message.startsWith('BUSYKEY') ? ': the target already holds this key; add --replace to overwrite the keys the backup holds (the target was confirmed, so its other keys stay)' : '';
    throw new RestoreError('REDIS_RESTORE_FAILED', `RESTORE failed: ${failed.message}${hint}`);
  }
  return errors.length;
}

function countKeys(info: string): number {
  return [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

async function openTarget(url: string): Promise<RestoreTarget> {
  const admin = await RespConnection.open(url, { db: 0 });
  if (!/cluster_enabled:1/.test(await admin.text(['INFO', 'cluster']))) {
    // One server: RESTOREs pipelined on our own connections, one per database (a client
    // library's per-command objects cost more than the server's work here).
    const clients = new Map<number, RespConnection>([[0, admin]]);
    return {
      cluster: false,
      async rdbVersion() {
        const probe = RDB_PROBE_KEY();
        await admin.command(['SET', probe, '1', 'PX', 10_000]);
        const dump = await admin.command(['DUMP', probe]);
        await admin.command(['DEL', probe]);
        return Buffer.isBuffer(dump) ? dumpFooter(dump).rdbVersion : 0;
      },
      keyCount: async () => countKeys(await admin.text(['INFO', 'keyspace'])),
      async restore(db, commands, tolerateBusy) {
        let client = clients.get(db);
        if (!client) {
          client = await RespConnection.open(url, { db });
          clients.set(db, client);
        }
        const replies = await client.pipeline(commands.map((args) => ['RESTORE', ...args]));
        return restoreOutcome(replies.filter((r): r is RespReplyError => r instanceof RespReplyError), tolerateBusy);
      },
      close: () => clients.forEach((c) => c.close()),
    };
  }
  admin.close();
  // A cluster: ioredis' cluster client routes each RESTORE to its slot's primary and
  // batches the commands per node (auto-pipelining); a key whose slot moves meanwhile is
  // redirected.
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
    async rdbVersion() {
      const probe = RDB_PROBE_KEY();
      await cluster.set(probe, '1', 'PX', 10_000);
      const dump = await cluster.dumpBuffer(probe);
      await cluster.del(probe);
      return dump ? dumpFooter(dump).rdbVersion : 0;
    },
    keyCount: async () => (await Promise.all(cluster.nodes('master').map((n) => n.info('keyspace')))).reduce((sum, info) => sum + countKeys(info), 0),
    async restore(_db, commands, tolerateBusy) {
      const replies = await Promise.allSettled(commands.map((args) => cluster.call('RESTORE', ...args)));
      return restoreOutcome(replies.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error), tolerateBusy);
    },
    close: () => cluster.disconnect(),
  };
}

/**
 * Logical archives go back through RESTORE with absolute TTLs (ABSTTL), into one server or
 * a whole cluster. The target must be empty unless `confirm` repeats its address
 * (host:port); `replace` then overwrites clashing keys. The payload's checksum is proven
 * before anything is written. A target whose RDB version is older than the archive's,
 * or a cluster asked to take databases other than 0, is refused before anything is written.
 */
export async function restoreRedisLogical(
  entry: BackupEntry,
  targetUrl: string,
  options: { confirm?: string | undefined; replace?: boolean; now?: () => number },
  deps: { repo: Repository; log: Log; onProgress?: Progress | undefined },
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
    // --replace says what happens to keys that clash, not whether to write over data: a
    // non-empty target always needs its address repeated.
    if (existing > 0 && options.confirm !== address) throw new RestoreRefusedError(address, `${existing} keys`);
    // RESTOREs cannot be staged and swapped: the payload is proven whole before the first one.
    await provePayload(entry, deps.repo, undefined, deps.onProgress);

    let restored = 0;
    let expiredSkipped = 0;
    let duplicatesSkipped = 0;
    // An empty target holds only keys this restore wrote (or a writer started meanwhile,
    // whose value is kept): a BUSYKEY there is a key the archive lists twice. Into a
    // confirmed non-empty target it is a clash with data that was there, and fails.
    const tolerateBusy = existing === 0 && !options.replace;
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
        const duplicates = await target.restore(db, commands, tolerateBusy);
        duplicatesSkipped += duplicates;
        restored += commands.length - duplicates;
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
    await pipeCheckedPayload(entry, deps.repo, [new LogicalReader(), sink]);
    return { backupId: entry.id, target: address, mode: 'logical', restored, expiredSkipped, duplicatesSkipped, seconds: (Date.now() - started) / 1000 };
  } finally {
    target.close();
  }
}

/**
 * RDB backups are restored by a stopped server reading them at start-up: this places
 * `dump.rdb` (decoded, checksum-checked, written atomically) in the server's `dir`.
 */
export async function placeRdbFile(entry: BackupEntry, targetDir: string, options: { confirm?: string | undefined }, deps: { repo: Repository; onProgress?: Progress | undefined }): Promise<RedisRestoreResult> {
  const started = Date.now();
  const dir = path.resolve(targetDir);
  const file = path.join(dir, 'dump.rdb');
  const exists = await stat(file).then(() => true, () => false);
  if (exists && options.confirm !== dir && options.confirm !== targetDir) throw new RestoreRefusedError(targetDir, 'dump.rdb exists');
  await mkdir(dir, { recursive: true });
  const partial = `${file}.ops-partial`;
  try {
    await pipeCheckedPayload(entry, deps.repo, [createWriteStream(partial)], deps.onProgress);
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return { backupId: entry.id, target: dir, mode: 'rdb', restored: 1, expiredSkipped: 0, duplicatesSkipped: 0, seconds: (Date.now() - started) / 1000, placedFile: file };
}

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import type { BackupEntry } from '../backup/catalog.js';
import { decoder } from '../backup/codec.js';
import type { Log } from '../log.js';
import { openRedis } from '../redis/logical-dump.js';
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

async function serverRdbVersion(client: Redis): Promise<number> {
  const probe = `ops-automation:rdb-version-probe:${process.pid}:${Date.now()}`;
  await client.set(probe, '1', 'PX', 10_000);
  const dump = await client.dumpBuffer(probe);
  await client.del(probe);
  return dump ? dumpFooter(dump).rdbVersion : 0;
}

async function keyCount(client: Redis): Promise<number> {
  const info = await client.info('keyspace');
  return [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * Logical archives go back through RESTORE with absolute TTLs (ABSTTL). The target must
 * be empty unless `confirm` repeats its address (host:port) or `replace` is set; a target
 * whose RDB version is older than the archive's is refused before anything is written.
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
  const admin = await openRedis(targetUrl);
  const clients = new Map<number, Redis>();
  try {
    const archiveVersion = Number((entry.manifest?.details as { rdbVersion?: number } | undefined)?.rdbVersion ?? 0);
    const targetVersion = await serverRdbVersion(admin);
    if (archiveVersion > targetVersion) {
      throw new RestoreError('REDIS_RDB_TOO_NEW', `the backup holds RDB version ${archiveVersion} payloads but ${maskUrl(targetUrl)} speaks version ${targetVersion}: RESTORE would refuse them; restore into a Redis at least as new as the source`);
    }
    const existing = await keyCount(admin);
    if (existing > 0 && !options.replace && options.confirm !== address) throw new RestoreRefusedError(address, `${existing} keys`);

    const { source, hasher, gate, dec } = await decodedPayload(entry, deps.repo);
    let restored = 0;
    let expiredSkipped = 0;
    const clientFor = async (db: number) => {
      let c = clients.get(db);
      if (!c) {
        c = await openRedis(targetUrl, db);
        clients.set(db, c);
      }
      return c;
    };
    let batch: LogicalRecord[] = [];
    const flush = async () => {
      const byDb = new Map<number, LogicalRecord[]>();
      for (const r of batch) byDb.set(r.db, [...(byDb.get(r.db) ?? []), r]);
      batch = [];
      for (const [db, records] of byDb) {
        const p = (await clientFor(db)).pipeline();
        for (const r of records) {
          const args: (string | number | Buffer)[] = [r.key, r.expireAtMs === -1 ? 0 : r.expireAtMs, r.payload];
          if (r.expireAtMs !== -1) args.push('ABSTTL');
          if (options.replace) args.push('REPLACE');
          p.call('RESTORE', ...args);
        }
        const replies = (await p.exec()) ?? [];
        const failed = replies.find(([e]) => e);
        if (failed) throw new RestoreError('REDIS_RESTORE_FAILED', `RESTORE failed: ${(failed[0] as Error).message}`);
        restored += records.length;
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
    admin.disconnect();
    for (const c of clients.values()) c.disconnect();
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

import { abortable } from '../util/concurrency.js';
import { DrillInterruptedError } from './errors.js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { BackupEntry } from '../backup/catalog.js';
import type { Drill } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { LogicalReader, type LogicalRecord } from '../redis/logical-format.js';
import { RespConnection } from '../redis/resp-connection.js';
import type { RespValue } from '../redis/resp.js';
type RespArg = string | number | Buffer;
import type { Repository } from '../repository/repository.js';
import { pipeCheckedPayload } from '../restore/payload.js';
import { placeRdbFile, restoreRedisLogical } from '../restore/redis-restore.js';
import { drillRecord, type DrillDeps } from './record.js';
import { startScratchRedis, type ScratchRedis } from './scratch-redis.js';
import { wasInterrupted } from '../process/interrupted.js';

/** The value type a DUMP payload holds, from its first byte (the RDB object type). */
const RDB_TYPES: Record<number, string> = {
  0: 'string', 1: 'list', 2: 'set', 3: 'zset', 4: 'hash', 5: 'zset', 6: 'module', 7: 'module', 9: 'hash', 10: 'list', 11: 'set', 12: 'zset',
  13: 'hash', 14: 'list', 15: 'stream', 16: 'hash', 17: 'zset', 18: 'list', 19: 'stream', 20: 'set', 21: 'stream',
};
const typeOf = (payload: Buffer) => RDB_TYPES[payload[0] ?? -1] ?? `rdb type ${payload[0]}`;
/** The command that reads a whole value of a type, in an order that does not depend on the encoding. */
function readCommand(type: string, key: Buffer): RespArg[] {
  switch (type) {
    case 'string':
      return ['GET', key];
    case 'list':
      return ['LRANGE', key, 0, -1];
    case 'set':
      return ['SMEMBERS', key];
    case 'zset':
      return ['ZRANGE', key, 0, -1, 'WITHSCORES'];
    case 'hash':
      return ['HGETALL', key];
    case 'stream':
      return ['XRANGE', key, '-', '+'];
    default:
      return ['DUMP', key];
  }
}

function bytes(value: RespValue): Buffer {
  if (Buffer.isBuffer(value)) return Buffer.concat([Buffer.from(`B${value.length}:`), value]);
  if (Array.isArray(value)) return Buffer.concat([Buffer.from(`A${value.length}:`), ...value.map(bytes)]);
  if (value instanceof Error) return Buffer.from(`E${value.message}`);
  return Buffer.from(`N${String(value)}`);
}

/**
 * A value as comparable bytes: set members and hash fields sorted (their order is the
 * hash table's), everything else in the server's order (lists, sorted sets and streams
 * are ordered). Stream consumer groups are not part of it.
 */
function canonical(type: string, value: RespValue): Buffer {
  if (!Array.isArray(value)) return bytes(value);
  if (type === 'set') return Buffer.concat([Buffer.from(`S${value.length}:`), ...value.map(bytes).sort(Buffer.compare)]);
  if (type === 'hash') {
    const pairs: Buffer[] = [];
    for (let i = 0; i + 1 < value.length; i += 2) pairs.push(Buffer.concat([bytes(value[i]!), bytes(value[i + 1]!)]));
    return Buffer.concat([Buffer.from(`H${pairs.length}:`), ...pairs.sort(Buffer.compare)]);
  }
  return bytes(value);
}

/** Order-free digest of one database: XOR of sha256(key, value, expiry) over its keys, alike for archive and server. */
class DbDigest {
  keys = 0;
  private readonly acc = Buffer.alloc(32);
  add(key: Buffer, type: string, value: Buffer, expireAtMs: number): void {
    const h = createHash('sha256').update(key).update(`\0${type}\0`).update(value).update(`\0${expireAtMs}`).digest();
    for (let i = 0; i < 32; i += 1) this.acc[i]! ^= h[i]!;
    this.keys += 1;
  }
  hex(): string {
    return this.acc.toString('hex');
  }
}

const MAX_DIFFERENCES = 20;
const printable = (key: Buffer) => JSON.stringify(key.toString('utf8').slice(0, 80));

/**
 * Level 4 for Redis. Logical backups are restored through the restore path into a
 * redis-server the drill starts, then every key of the archive is read back (DUMP and
 * PEXPIRETIME, pipelined) and compared: presence, type, value, expiry to the millisecond,
 * and per database the key count and an order-free digest computed alike from the archive
 * and from the server. RDB backups are loaded by the scratch server at start (which checks
 * the file's CRC), and their key counts per database reported; their values are not
 * compared key by key (that needs an RDB parser; the file's CRC-64 is level 3).
 */
export async function drillRedis(entry: BackupEntry, deps: DrillDeps & { repo: Repository; log: Log }): Promise<Drill> {
  const now = deps.now ?? (() => new Date());
  const mode = (entry.manifest?.details as { mode?: string } | undefined)?.mode === 'rdb' ? 'rdb' : 'logical';
  const dir = await mkdtemp(path.join(deps.scratchRoot ?? os.tmpdir(), 'ops-drill-redis-'));
  let scratch: ScratchRedis | undefined;
  const started = Date.now();
  try {
    let restoreSeconds: number;
    const until = <T>(work: Promise<T>) => abortable(work, deps.signal);
    if (mode === 'rdb') {
      await until(placeRdbFile(entry, dir, {}, deps));
      scratch = await until(startScratchRedis(dir, { dbfilename: 'dump.rdb', env: deps.env }));
      restoreSeconds = (Date.now() - started) / 1000;
    } else {
      scratch = await until(startScratchRedis(dir, { env: deps.env }));
      const restored = await until(restoreRedisLogical(entry, scratch.url, {}, deps));
      restoreSeconds = (Date.now() - started) / 1000;
      deps.log.info(`drill redis/${entry.name}: ${restored.restored} keys restored into ${scratch.address}`);
    }
    await deps.afterRestore?.(scratch.url);
    const checkStarted = Date.now();
    const result = await until(mode === 'rdb' ? compareRdb(scratch) : compareLogical(entry, scratch, deps.repo));
    return drillRecord(entry, now(), {
      scratch: `redis-server ${scratch.address} (${mode})`,
      restoreSeconds,
      checkSeconds: (Date.now() - checkStarted) / 1000,
      compared: result.compared,
      differences: result.differences,
      digests: result.digests,
      // An empty source restored empty is a passed drill ("0 keys"); empty where the backup holds keys is not.
      ...(result.compared === 0 && (mode === 'logical' ? archivedKeys(entry) : result.inBackup) !== 0
        ? { failure: `the restored server holds no keys to compare, but the backup holds ${(mode === 'logical' ? archivedKeys(entry) : result.inBackup) ?? 'an unknown number of'} keys` }
        : {}),
    });
  } catch (error) {
    if (wasInterrupted(deps.signal, error)) throw new DrillInterruptedError(`redis/${entry.name}`, error);
    return drillRecord(entry, now(), { scratch: scratch ? `redis-server ${scratch.address}` : 'redis-server (not started)', restoreSeconds: (Date.now() - started) / 1000, compared: 0, failure: `restore failed: ${errorMessage(error)}` });
  } finally {
    await scratch?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function archivedKeys(entry: BackupEntry): number | undefined {
  return (entry.manifest?.details as { keys?: number } | undefined)?.keys;
}

interface Comparison {
  compared: number;
  differences: string[];
  digests: Record<string, { keys: number; digest: string }>;
  /** How many keys the backup holds, where known: the logical archive's count, or what Redis loaded from the RDB. */
  inBackup?: number | undefined;
}

async function keyspace(url: string): Promise<Map<number, number>> {
  const c = await RespConnection.open(url);
  try {
    const info = await c.text(['INFO', 'keyspace']);
    return new Map([...info.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]));
  } finally {
    c.close();
  }
}

async function compareRdb(scratch: ScratchRedis): Promise<Comparison> {
  const counts = await keyspace(scratch.url);
  const digests = Object.fromEntries([...counts].map(([db, keys]) => [`db${db}`, { keys, digest: '-' }]));
  // Redis's own count of what it loaded from the file (INFO persistence, 7.0+): an RDB of no keys loads 0.
  const c = await RespConnection.open(scratch.url);
  let inBackup: number | undefined;
  try {
    const m = /^rdb_last_load_keys_loaded:(\d+)/m.exec(await c.text(['INFO', 'persistence']));
    inBackup = m ? Number(m[1]) : undefined;
  } finally {
    c.close();
  }
  return { compared: [...counts.values()].reduce((a, b) => a + b, 0), differences: [], digests, inBackup };
}

async function compareLogical(entry: BackupEntry, scratch: ScratchRedis, repo: Repository): Promise<Comparison> {
  const differences: string[] = [];
  const note = (d: string) => void (differences.length < MAX_DIFFERENCES && differences.push(d));
  let mismatched = 0;
  const fromArchive = new Map<number, DbDigest>();
  const fromServer = new Map<number, DbDigest>();
  const connections = new Map<number, RespConnection>();
  const digestOf = (m: Map<number, DbDigest>, db: number) => m.get(db) ?? m.set(db, new DbDigest()).get(db)!;
  let compared = 0;
  let batch: LogicalRecord[] = [];

  // Each archived value is RESTOREd under a probe name in the scratch server and read back
  // by the same commands as the restored key: the digest is computed the same way from the
  // archive and from the restored server, whatever encoding or member order either has.
  const probePrefix = `\0ops-drill:${randomBytes(8).toString('hex')}:`;
  const check = async () => {
    const byDb = new Map<number, LogicalRecord[]>();
    for (const r of batch) (byDb.get(r.db) ?? byDb.set(r.db, []).get(r.db)!).push(r);
    batch = [];
    for (const [db, all] of byDb) {
      let c = connections.get(db);
      if (!c) connections.set(db, (c = await RespConnection.open(scratch.url, { db })));
      // A key whose deadline has passed is gone from both sides, as Redis would have it.
      const records = all.filter((r) => r.expireAtMs === -1 || r.expireAtMs > Date.now() + 1000);
      const commands: RespArg[][] = [];
      records.forEach((r, i) => {
        const probe = Buffer.concat([Buffer.from(probePrefix), Buffer.from(String(i))]);
        const type = typeOf(r.payload);
        commands.push(['TYPE', r.key], ['PEXPIRETIME', r.key], readCommand(type, r.key), ['RESTORE', probe, 0, r.payload, 'REPLACE'], readCommand(type, probe), ['DEL', probe]);
      });
      const replies = await c.pipeline(commands);
      records.forEach((r, i) => {
        compared += 1;
        const [type, expiry, restoredValue, restoredProbe, archivedValue] = replies.slice(6 * i, 6 * i + 5) as RespValue[];
        const archiveType = typeOf(r.payload);
        if (restoredProbe instanceof Error) throw new Error(`the archive's value of ${printable(r.key)} does not RESTORE into the scratch server: ${restoredProbe.message}`);
        digestOf(fromArchive, db).add(r.key, archiveType, canonical(archiveType, archivedValue!), r.expireAtMs);
        const restoredType = Buffer.isBuffer(type) ? type.toString() : 'none';
        if (restoredType === 'none') {
          mismatched += 1;
          return note(`db${db} key ${printable(r.key)}: missing from the restored server`);
        }
        const restoredExpiry = typeof expiry === 'number' ? expiry : -1;
        digestOf(fromServer, db).add(r.key, restoredType, canonical(restoredType, restoredValue!), restoredExpiry);
        if (restoredType !== archiveType) {
          mismatched += 1;
          note(`db${db} key ${printable(r.key)}: ${restoredType}, the archive holds a ${archiveType}`);
        } else if (!canonical(restoredType, restoredValue!).equals(canonical(archiveType, archivedValue!))) {
          mismatched += 1;
          note(`db${db} key ${printable(r.key)}: value differs from the archive`);
        } else if (restoredExpiry !== r.expireAtMs) {
          mismatched += 1;
          note(`db${db} key ${printable(r.key)}: expires ${restoredExpiry === -1 ? 'never' : new Date(restoredExpiry).toISOString()}, the archive says ${r.expireAtMs === -1 ? 'never' : new Date(r.expireAtMs).toISOString()}`);
        }
      });
    }
  };
  try {
    const sink = new Writable({
      objectMode: true,
      write(record: LogicalRecord, _e, cb) {
        batch.push(record);
        if (batch.length >= 500) check().then(() => cb(), cb);
        else cb();
      },
      final(cb) {
        check().then(() => cb(), cb);
      },
    });
    await pipeCheckedPayload(entry, repo, [new LogicalReader(), sink]);
  } finally {
    connections.forEach((c) => c.close());
  }
  // Keys the server holds beyond the archive's: counted per database.
  const counts = await keyspace(scratch.url);
  for (const [db, keys] of counts) {
    const expected = fromArchive.get(db)?.keys ?? 0;
    if (keys !== expected) {
      mismatched += 1;
      note(`db${db}: ${keys} keys restored, the archive holds ${expected}`);
    }
  }
  const digests: Record<string, { keys: number; digest: string }> = {};
  for (const [db, d] of fromArchive) {
    const server = fromServer.get(db);
    digests[`db${db}`] = { keys: d.keys, digest: d.hex() };
    if (server && server.hex() !== d.hex() && differences.length === 0) note(`db${db}: value digest ${server.hex().slice(0, 16)}… differs from the archive's ${d.hex().slice(0, 16)}…`);
  }
  if (mismatched > differences.length) differences.push(`… ${mismatched - differences.length} more`);
  return { compared, differences, digests };
}

import { RECORD_HEAD_BYTES, encodeEnd, encodeHeader, writeRecordHead } from './logical-format.js';
import { RedisBackupError } from './errors.js';
import { parseInfo } from './probe.js';
import { RespConnection } from './resp-connection.js';
import { RespReplyError, type RespValue } from './resp.js';

export interface LogicalStats {
  keys: number;
  /** Keys listed by SCAN but gone (deleted or expired) before DUMP: counted, not an error. */
  vanished: number;
  dbs: number[];
  nodes: string[];
  redisVersion: string;
  /** Highest RDB version among the DUMP payloads: RESTORE refuses newer than its own. */
  rdbVersion: number;
}

export interface LogicalOptions {
  /** Connections dumping in parallel per node (SCAN runs on one more). */
  connections?: number;
  batch?: number;
  now?: () => number;
}

/**
 * DUMP and PTTL of a batch in one script call: one command per batch instead of two per
 * key. ARGV: database number, payload budget, then the keys (SCAN on a node only returns
 * keys that node owns). A script blocks the server for all its keys, so it stops once
 * its payloads pass the budget and the client sends the rest in the next call: 500 small
 * keys a call, a big key on its own, never 500 big ones (other clients would wait, and
 * past the server's busy-script threshold get BUSY errors). When INFO says the database
 * holds no key with an expiry, PTTL is skipped (a third of the server's time per key);
 * the call is atomic, so that answer holds for every key in it. The flags (Redis 7+)
 * declare it read-only, so it runs on replicas and under maxmemory, and let it touch keys
 * of several slots in a cluster; older servers get the plain script.
 */
const dumpScriptBody = (ttlCommand: 'PEXPIRETIME' | 'PTTL') => `local call = redis.call
local expires = string.match(call('INFO', 'keyspace'), 'db' .. ARGV[1] .. ':keys=%d+,expires=(%d+)')
local ttls = expires ~= nil and expires ~= '0'
local budget = tonumber(ARGV[2])
local used = 0
local r = {}
local n = 0
for i = 3, #ARGV do
  local k = ARGV[i]
  local d = call('DUMP', k)
  r[n + 1] = d
  if ttls then r[n + 2] = call('${ttlCommand}', k) else r[n + 2] = -1 end
  n = n + 2
  if d then used = used + #d end
  if used >= budget then break end
end
return r`;
// Redis 7 (script flags) also has PEXPIRETIME: the absolute expiry as the server holds it,
// so a restore with ABSTTL puts back exactly that deadline. Older servers answer PTTL,
// which the client turns into a deadline with its own clock (late by up to the call's time).
const DUMP_SCRIPTS: { script: string; absolute: boolean }[] = [
  { script: `#!lua flags=no-writes,allow-cross-slot-keys\n${dumpScriptBody('PEXPIRETIME')}`, absolute: true },
  { script: dumpScriptBody('PTTL'), absolute: false },
];
/** DUMP payload bytes after which a script call returns: about a millisecond of server time for plain strings. */
export const CALL_BUDGET_BYTES = 512 * 1024;

/** How one node's keys are dumped: by a loaded script, or (scripts refused) pipelined commands. */
export interface DumpMethod {
  db: number;
  sha: string | null;
  /** Expiries come as absolute ms (PEXPIRETIME), not as time left (PTTL). */
  absolute: boolean;
}

/** Loads the dump script; a server that refuses scripts (ACLs, managed restrictions) gets pipelined commands. */
export async function dumpMethod(connection: RespConnection, db: number): Promise<DumpMethod> {
  for (const { script, absolute } of DUMP_SCRIPTS) {
    try {
      const sha = await connection.text(['SCRIPT', 'LOAD', script]);
      await connection.command(['EVALSHA', sha, 0, db, CALL_BUDGET_BYTES]);
      return { db, sha, absolute };
    } catch (error) {
      if (!(error instanceof RespReplyError)) throw error;
    }
  }
  const absolute = await connection.command(['PEXPIRETIME', 'ops-automation:probe']).then(() => true, (e: unknown) => (e instanceof RespReplyError ? false : Promise.reject(e)));
  return { db, sha: null, absolute };
}

/**
 * DUMP payload and PTTL for the first keys, in key order (payload null: the key is gone):
 * all of them, or (script) as many as fit the call's budget, at least one.
 */
export async function dumpAndTtl(connection: RespConnection, method: DumpMethod, keys: Buffer[]): Promise<RespValue[]> {
  if (method.sha) {
    try {
      const replies = (await connection.command(['EVALSHA', method.sha, 0, method.db, CALL_BUDGET_BYTES, ...keys])) as RespValue[];
      if (replies.length < 2 || replies.length % 2 !== 0) throw new RedisBackupError('REDIS_PROTOCOL', `the dump script answered ${replies.length} values for ${keys.length} keys`);
      return replies;
    } catch (error) {
      // The script cache was flushed (SCRIPT FLUSH, restart, failover): load it again once.
      if (!(error instanceof RespReplyError) || !error.message.startsWith('NOSCRIPT')) throw error;
      Object.assign(method, await dumpMethod(connection, method.db));
      return dumpAndTtl(connection, method, keys);
    }
  }
  const replies = await connection.pipeline(keys.flatMap((k) => [['DUMP', k], [method.absolute ? 'PEXPIRETIME' : 'PTTL', k]]));
  const failed = replies.find((r) => r instanceof RespReplyError);
  if (failed) throw failed;
  return replies;
}

/** Payloads above this are not copied into the batch buffer. */
const BIG_PAYLOAD = 256 * 1024;

/**
 * Records for one batch, written into one buffer: a key SCAN listed but DUMP no longer
 * finds (deleted or expired in between) is counted in `stats.vanished`, not an error; a
 * big payload is passed on as the buffer it arrived in, never copied.
 */
export function encodeBatch(db: number, keys: Buffer[], replies: RespValue[], at: number, stats: LogicalStats, absolute = false): { buffers: Buffer[]; records: number } {
  let size = 0;
  for (let i = 0; i < keys.length; i += 1) {
    const payload = replies[2 * i];
    if (!Buffer.isBuffer(payload) || replies[2 * i + 1] === -2) continue;
    size += RECORD_HEAD_BYTES + keys[i]!.length + (payload.length > BIG_PAYLOAD ? 0 : payload.length);
  }
  const out = Buffer.allocUnsafe(size);
  const buffers: Buffer[] = [];
  let o = 0;
  let segment = 0;
  let records = 0;
  for (let i = 0; i < keys.length; i += 1) {
    const payload = replies[2 * i];
    const pttl = replies[2 * i + 1];
    if (!Buffer.isBuffer(payload) || pttl === -2) {
      stats.vanished += 1;
      continue;
    }
    const version = payload.length >= 10 ? payload.readUInt16LE(payload.length - 10) : 0;
    if (version > stats.rdbVersion) stats.rdbVersion = version;
    o = writeRecordHead(out, o, db, keys[i]!, typeof pttl !== 'number' || pttl < 0 ? -1 : absolute ? pttl : at + pttl, payload.length);
    if (payload.length > BIG_PAYLOAD) {
      buffers.push(out.subarray(segment, o), payload);
      segment = o;
    } else {
      o += payload.copy(out, o);
    }
    records += 1;
  }
  if (o > segment) buffers.push(out.subarray(segment, o));
  return { buffers, records };
}

/**
 * The primaries to dump: this server, or every primary of a cluster that serves slots.
 * A primary marked failing would leave its slots out of the archive: that is refused, not
 * skipped, so a partial cluster never produces a backup that looks complete.
 */
async function primaries(admin: RespConnection, url: string): Promise<string[]> {
  const info = parseInfo(await admin.text(['INFO', 'cluster']));
  if (info.cluster_enabled !== '1') return [url];
  const base = new URL(url);
  // <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
  const serving = (await admin.text(['CLUSTER', 'NODES']))
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((f) => f.length > 8 && f[2]!.split(',').includes('master'));
  const failing = serving.filter((f) => /fail|noaddr/.test(f[2]!));
  if (failing.length > 0) {
    throw new RedisBackupError('REDIS_CLUSTER_DEGRADED', `cluster primary ${failing.map((f) => f[1]!.split('@')[0]).join(', ')} is marked ${failing.map((f) => f[2]).join(', ')}: its slots cannot be dumped; back up once the cluster is healthy (CLUSTER NODES)`);
  }
  if (serving.length === 0) throw new RedisBackupError('REDIS_CLUSTER_EMPTY', `${base.host} is in cluster mode but no primary serves slots (CLUSTER NODES)`);
  return serving.map((f) => {
    const [address, hostname] = f[1]!.split(',');
    const hostPort = address!.split('@')[0]!;
    const u = new URL(base.toString());
    // The announced hostname when there is one: TLS certificates name hosts, not addresses.
    u.hostname = hostname || hostPort.slice(0, hostPort.lastIndexOf(':')) || base.hostname;
    u.port = hostPort.slice(hostPort.lastIndexOf(':') + 1);
    u.pathname = '/0';
    return u.toString();
  });
}

/**
 * The logical archive as a byte stream: SCAN per database (every database in use, every
 * primary of a cluster), DUMP + PTTL in batches on several connections, overlapped with
 * the next SCAN. Absolute expiry times are recorded, so a restore later keeps each key's
 * deadline rather than its remaining time.
 */
export async function* logicalDump(url: string, stats: LogicalStats, options: LogicalOptions = {}): AsyncGenerator<Buffer> {
  // 3 dumping connections, 500 keys a batch: 316k keys/s against 276k for pipelined
  // DUMP/PTTL (bench/redis.ts); the server, not the client, is then the busier side.
  const connections = options.connections ?? 3;
  const batch = options.batch ?? 500;
  const now = options.now ?? Date.now;
  const admin = await RespConnection.open(url, { db: 0 });
  let count = 0;
  try {
    stats.redisVersion = parseInfo(await admin.text(['INFO', 'server'])).redis_version ?? 'unknown';
    const nodes = await primaries(admin, url);
    stats.nodes = nodes.map((n) => {
      const u = new URL(n);
      return `${u.hostname}:${u.port || 6379}`;
    });
    const sources: { node: string; db: number }[] = [];
    for (const node of nodes) {
      const client = node === url ? admin : await RespConnection.open(node, { db: 0 });
      const keyspace = parseInfo(await client.text(['INFO', 'keyspace']));
      for (const k of Object.keys(keyspace)) if (/^db\d+$/.test(k)) sources.push({ node, db: Number(k.slice(2)) });
      if (client !== admin) client.close();
    }
    stats.dbs = [...new Set(sources.map((s) => s.db))].sort((a, b) => a - b);
    yield encodeHeader({ format: 'ops-redis-logical/1', createdAt: new Date(now()).toISOString(), redisVersion: stats.redisVersion, dbs: stats.dbs });

    for (const source of sources) {
      const scanner = await RespConnection.open(source.node, { db: source.db });
      const workers: RespConnection[] = [];
      try {
        for (let i = 0; i < connections; i += 1) workers.push(await RespConnection.open(source.node, { db: source.db }));
        const method = await dumpMethod(workers[0]!, source.db);
        const pending: Promise<Buffer[]>[] = [];
        let next = 0;
        const dumpBatch = async (worker: RespConnection, keys: Buffer[]): Promise<Buffer[]> => {
          const buffers: Buffer[] = [];
          for (let i = 0; i < keys.length; ) {
            const rest = i === 0 ? keys : keys.slice(i);
            const replies = await dumpAndTtl(worker, method, rest);
            const handled = Math.min(rest.length, replies.length / 2);
            const out = encodeBatch(source.db, handled === rest.length ? rest : rest.slice(0, handled), replies, now(), stats, method.absolute);
            i += handled;
            count += out.records;
            for (const b of out.buffers) buffers.push(b);
          }
          return buffers;
        };
        let cursor: Buffer | string = '0';
        do {
          const reply = (await scanner.command(['SCAN', cursor, 'COUNT', batch])) as [Buffer, Buffer[]];
          cursor = reply[0];
          const keys = reply[1];
          if (keys.length > 0) {
            const dumped = dumpBatch(workers[next++ % connections]!, keys);
            dumped.catch(() => undefined); // awaited in order below
            pending.push(dumped);
          }
          // Keep every connection busy, but never more than one batch each in memory.
          while (pending.length >= connections) for (const b of await pending.shift()!) yield b;
        } while (!(cursor.length === 1 && cursor[0] === 0x30));
        while (pending.length > 0) for (const b of await pending.shift()!) yield b;
      } finally {
        scanner.close();
        for (const w of workers) w.close();
      }
    }
    stats.keys = count;
    yield encodeEnd(count);
  } finally {
    admin.close();
  }
}

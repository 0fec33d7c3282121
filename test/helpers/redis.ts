import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './prometheus.js';
import { makeTempDir } from './tmp.js';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  client(db?: number): Redis;
  stop(): Promise<void>;
}

/**
 * A private redis-server on its own port and directory (never the machine's :6379).
 * Diskless sync without the 5 s delay (NOTES.md), DEBUG enabled for POPULATE.
 */
export async function startRedis(extra: string[] = []): Promise<TestRedis> {
  const dir = await makeTempDir('ops-redis-');
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--repl-diskless-sync-delay', '0', '--enable-debug-command', 'yes', ...extra],
    { stdio: 'ignore' },
  );
  const clients: Redis[] = [];
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, password: extra.includes('--requirepass') ? extra[extra.indexOf('--requirepass') + 1] : undefined });
  probe.on('error', () => undefined);
  for (let i = 0; i < 100; i += 1) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client(db = 0) {
      const c = new Redis({ port, host: '127.0.0.1', db, password: extra.includes('--requirepass') ? extra[extra.indexOf('--requirepass') + 1] : undefined });
      clients.push(c);
      return c;
    },
    stop: () => stopServer(child, dir, clients),
  };
}

/** Idempotent: a test may stop its server and its cleanup stop it again. */
async function stopServer(child: ChildProcess, dir: string, clients: Redis[]): Promise<void> {
  for (const c of clients) c.disconnect();
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
}

/** Every Redis type, with and without TTL, in one database. */
export async function fillAllTypes(c: Redis | Cluster): Promise<void> {
  await c.set('str', 'plain');
  await c.set('str:ttl', 'expiring', 'EX', 3600);
  await c.set(Buffer.from([0xff, 0x00, 0x01]), Buffer.from([0, 1, 2, 255]).toString('latin1'));
  await c.rpush('list', 'a', 'b', 'c');
  await c.sadd('set', 'x', 'y');
  await c.zadd('zset', 1, 'one', 2, 'two');
  await c.hset('hash', { f1: 'v1', f2: 'v2' });
  await c.xadd('stream', '1-1', 'field', 'value');
  await c.hset('hash:ttl', { f: 'v' });
  await c.pexpire('hash:ttl', 7_200_000);
  await c.set('big', 'x'.repeat(3 * 1024 * 1024));
}

/** Type, value and TTL (rounded to minutes) of every key: equal snapshots = equal data. */
export async function snapshot(c: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of (await c.keysBuffer('*')).sort(Buffer.compare)) {
    const type = await c.type(key);
    let value: unknown;
    if (type === 'string') value = (await c.getBuffer(key))?.toString('base64');
    else if (type === 'list') value = await c.lrange(key, 0, -1);
    else if (type === 'set') value = (await c.smembers(key)).sort();
    else if (type === 'zset') value = await c.zrange(key, '0', '-1', 'WITHSCORES');
    else if (type === 'hash') value = await c.hgetall(key);
    else if (type === 'stream') value = await c.xrange(key, '-', '+');
    const ttl = await c.pttl(key);
    out[key.toString('base64')] = JSON.stringify({ type, value, ttlMinutes: ttl < 0 ? ttl : Math.round(ttl / 60_000) });
  }
  return out;
}

export interface TestCluster {
  nodes: TestRedis[];
  /** A client that routes by slot. */
  client(): Cluster;
  /** Every key of every primary, as `snapshot` gives them for one server. */
  snapshot(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `size` primaries (no replicas) on private ports, slots spread by
 * `redis-cli --cluster create`; a short node timeout so a stopped primary is marked
 * failed within seconds.
 */
export async function startCluster(size = 3): Promise<TestCluster> {
  const nodes: TestRedis[] = [];
  const clients: Cluster[] = [];
  try {
    for (let i = 0; i < size; i += 1) nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000']));
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (let i = 0; ; i += 1) {
      const states = await Promise.all(nodes.map(async (n) => {
        const c = n.client(0);
        const info = (await c.call('CLUSTER', 'INFO')) as string;
        c.disconnect();
        return /cluster_state:ok/.test(info);
      }));
      if (states.every(Boolean)) break;
      if (i > 100) throw new Error('the test cluster did not reach cluster_state:ok within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    for (const n of nodes) await n.stop();
    throw error;
  }
  return {
    nodes,
    client() {
      const c = new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }]);
      clients.push(c);
      return c;
    },
    async snapshot() {
      const merged: Record<string, string> = {};
      for (const n of nodes) {
        const c = n.client(0);
        if ((await c.call('ROLE') as unknown[])[0] === 'master') Object.assign(merged, await snapshot(c));
        c.disconnect();
      }
      return merged;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      for (const n of nodes) await n.stop();
    },
  };
}

export interface TlsRedis extends TestRedis {
  /** The self-signed certificate (CN and SAN localhost, 127.0.0.1) clients must trust. */
  caFile: string;
}

/**
 * A redis-server that speaks only TLS (as ElastiCache with in-transit encryption does),
 * with a fresh self-signed certificate; `url` is rediss://localhost:<port>.
 */
export async function startTlsRedis(): Promise<TlsRedis> {
  const dir = await makeTempDir('ops-redis-tls-');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', dir, '--repl-diskless-sync-delay', '0'],
    { stdio: 'ignore' },
  );
  const clients: Redis[] = [];
  const connect = (db = 0) => new Redis({ host: 'localhost', port, db, tls: { ca: readFileSync(cert) }, lazyConnect: true, retryStrategy: () => null });
  for (let i = 0; ; i += 1) {
    const probe = connect();
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch (error) {
      probe.disconnect();
      if (i > 100) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    url: `rediss://localhost:${port}`,
    dir,
    caFile: cert,
    client(db = 0) {
      const c = connect(db);
      clients.push(c);
      return c;
    },
    stop: () => stopServer(child, dir, clients),
  };
}

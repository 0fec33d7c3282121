import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readlink, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { findBackup } from '../../src/backup/catalog.js';
import { dumpAndTtl, dumpMethod, encodeBatch, logicalDump } from '../../src/redis/logical-dump.js';
import { RespConnection } from '../../src/redis/resp-connection.js';
import { LogicalReader, MAGIC, encodeEnd } from '../../src/redis/logical-format.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { restoreKnowledge } from '../../src/restore/knowledge-restore.js';
import { cloneBackupGeneric, sealedKnowledgeArchive, type ArchiveHeader } from '../helpers/tamper.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { filesUnder } from '../helpers/repo.js';
import { fillAllTypes, snapshot, startRedis, type TestRedis } from '../helpers/redis.js';

interface Json {
  results: { ok: boolean; id: string; error?: string; verification?: { levelPassed: number; ok: boolean; failure?: string; levels: { ok: boolean; detail: string }[] } }[];
}

describe('Redis backups', () => {
  let source: TestRedis;
  let work: string;
  let cfg: string;
  const servers: TestRedis[] = [];
  before(async () => {
    source = await startRedis();
    await fillAllTypes(source.client(0));
    await source.client(3).set('in-db-3', 'three');
    await source.client(3).set('gone-soon', 'x', 'PX', 1500);
    work = await tempDir();
    cfg = await writeConfig(work, {
      repository: { url: `file://${work}/repo` },
      redis: [
        { name: 'rdbmode', url: source.url, mode: 'rdb' },
        { name: 'logical', url: source.url, urlEnv: 'UNSET_FOR_TEST', mode: 'logical' },
      ],
    });
  });
  after(async () => {
    await source?.stop();
    for (const s of servers) await s.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('logical mode: every type, with and without TTL, several databases, round-trips through RESTORE', async () => {
    const before0 = await snapshot(source.client(0));
    const before3 = await snapshot(source.client(3));
    const b = await runCli(['--config', cfg, '--json', 'backup', 'redis', '--name', 'logical']);
    assert.equal(b.code, 0, b.stderr);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'redis', 'latest', '--name', 'logical']);
    assert.equal(v.code, 0, v.stdout);
    assert.equal((JSON.parse(v.stdout) as Json).results[0]?.verification?.levelPassed, 3);
    const target = await startRedis();
    servers.push(target);
    await new Promise((r) => setTimeout(r, 1600)); // gone-soon has expired by now
    const r = await runCli(['--config', cfg, '--json', 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { restored: number; expiredSkipped: number };
    assert.equal(out.expiredSkipped, 1, 'the key that expired in between is skipped and counted');
    assert.deepEqual(await snapshot(target.client(0)), before0);
    const after3 = await snapshot(target.client(3));
    const expected3 = Object.fromEntries(Object.entries(before3).filter(([k]) => Buffer.from(k, 'base64').toString() !== 'gone-soon'));
    assert.deepEqual(after3, expected3);
  });

  it('a logical backup with Redis down is a source failure, named as such, not a repository write failure', async () => {
    const dir = await tempDir('ops-redis-down-');
    try {
      const down = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'down', url: 'redis://127.0.0.1:1', mode: 'logical' }] });
      const r = await runCli(['--config', down, 'backup', 'redis']);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, /redis backup of down failed: cannot connect to redis:\/\/127\.0\.0\.1:1/);
      assert.doesNotMatch(r.stdout + r.stderr, /to the repository failed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('logical restore refuses a non-empty target unless --confirm repeats its address, with or without --replace', async () => {
    const target = await startRedis();
    servers.push(target);
    await target.client(0).set('precious', 'keep');
    const address = `127.0.0.1:${target.port}`;
    const refused = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url]);
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, new RegExp(`target ${address} is not empty \\(1 keys\\): repeat its name with --confirm ${address}`));
    const ok = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url, '--confirm', address]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await target.client(0).get('precious'), 'keep');
    assert.equal(await target.client(0).get('str'), 'plain');
    const again = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url, '--confirm', address]);
    assert.equal(again.code, 2, 'existing keys without --replace');
    assert.match(again.stderr, /BUSYKEY.*add --replace to overwrite the keys the backup holds/);
    const replaceAlone = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url, '--replace']);
    assert.equal(replaceAlone.code, 64, '--replace does not stand in for --confirm');
    assert.match(replaceAlone.stderr, /is not empty .*--confirm/);
    assert.equal((await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'logical', '--target', target.url, '--replace', '--confirm', address])).code, 0);
  });

  it('rdb mode: SYNC over the replication protocol, CRC-64 checked, and loaded by a server started on it', async () => {
    const before0 = await snapshot(source.client(0));
    const b = await runCli(['--config', cfg, '--json', 'backup', 'redis', '--name', 'rdbmode']);
    assert.equal(b.code, 0, b.stderr);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'redis', 'latest', '--name', 'rdbmode']);
    assert.equal(v.code, 0, v.stdout);
    assert.match((JSON.parse(v.stdout) as Json).results[0]!.verification!.levels[2]!.detail, /CRC-64 [0-9a-f]{16} matches the trailer/);
    const dir = await tempDir('ops-rdb-target-');
    const placed = await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'rdbmode', '--target', dir]);
    assert.equal(placed.code, 0, placed.stderr);
    assert.equal((await readFile(path.join(dir, 'dump.rdb'))).subarray(0, 5).toString(), 'REDIS');
    assert.equal((await runCli(['--config', cfg, 'restore', 'redis', 'latest', '--name', 'rdbmode', '--target', dir])).code, 64, 'an existing dump.rdb is not overwritten unconfirmed');
    const loaded = await startRedis(['--dir', dir, '--dbfilename', 'dump.rdb']);
    servers.push(loaded);
    assert.deepEqual(await snapshot(loaded.client(0)), before0);
  });

  it('rdb mode against a server that refuses SYNC: a clear error naming logical mode, nothing written', async () => {
    const locked = await startRedis(['--rename-command', 'SYNC', '']);
    servers.push(locked);
    const dir = await tempDir();
    const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'managed', url: locked.url, mode: 'rdb' }] });
    const r = await runCli(['--config', c, 'backup', 'redis']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refused SYNC \(ERR unknown command 'SYNC'.*\): set "mode": "logical"/);
    assert.deepEqual(await filesUnder(`${dir}/repo`), []);
    const logical = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'managed', url: locked.url, mode: 'logical' }] });
    assert.equal((await runCli(['--config', logical, 'backup', 'redis'])).code, 0, 'logical mode works where SYNC is refused');
  });

  it('a script call stops once its payloads pass 512 KiB: a big key ends the call, the rest follow in the next', async () => {
    const server = await startRedis();
    servers.push(server);
    const c = server.client(0);
    for (let i = 0; i < 12; i += 1) await c.set(`big:${i}`, randomBytes(1024 * 1024));
    await c.call('DEBUG', 'POPULATE', '20000', 'small', '16');
    const conn = await RespConnection.open(server.url);
    try {
      const method = await dumpMethod(conn, 0);
      assert.ok(method.sha, 'the script is used');
      const keys = ['small:1', 'small:2', 'big:0', 'big:1', 'small:3'].map((k) => Buffer.from(k));
      const first = await dumpAndTtl(conn, method, keys);
      assert.equal(first.length / 2, 3, 'two small keys and the first big one, then the call returned');
      const second = await dumpAndTtl(conn, method, keys.slice(3));
      assert.equal(second.length / 2, 1, 'the next big key alone');
      assert.equal((await dumpAndTtl(conn, method, keys.slice(4))).length / 2, 1);
      const small = Array.from({ length: 500 }, (_, i) => Buffer.from(`small:${i}`));
      assert.equal((await dumpAndTtl(conn, method, small)).length / 2, 500, '500 small keys in one call');
    } finally {
      conn.close();
    }
    // The whole dump carries on from where each call stopped: every key, once.
    const stats = { keys: 0, vanished: 0, dbs: [], nodes: [], redisVersion: '', rdbVersion: 0 };
    const reader = new LogicalReader();
    const seen = new Set<string>();
    await pipeline(Readable.from(logicalDump(server.url, stats)), reader, new Writable({ objectMode: true, write: (r: { key: Buffer }, _e, cb) => (seen.add(r.key.toString()), cb()) }));
    assert.equal(stats.keys, 20_012);
    assert.equal(seen.size, 20_012);
  });

  it('a flushed script cache is reloaded once (NOSCRIPT); a server refusing scripts gets pipelined DUMP/PTTL', async () => {
    const server = await startRedis(['--rename-command', 'EVALSHA', '']);
    servers.push(server);
    const c = server.client(0);
    await c.set('a', '1');
    await c.set('b', '2', 'PX', 3_600_000);
    const refusing = await RespConnection.open(server.url);
    try {
      const method = await dumpMethod(refusing, 0);
      assert.equal(method.sha, null, 'EVALSHA refused: no script');
      const replies = await dumpAndTtl(refusing, method, [Buffer.from('a'), Buffer.from('b')]);
      assert.equal(replies.length, 4);
      assert.equal(replies[1], -1);
      assert.ok(typeof replies[3] === 'number' && replies[3] > Date.now() + 3_500_000, 'the absolute expiry is read (PEXPIRETIME)');
    } finally {
      refusing.close();
    }
    const conn = await RespConnection.open(source.url);
    try {
      const method = await dumpMethod(conn, 0);
      await conn.command(['SCRIPT', 'FLUSH']);
      const replies = await dumpAndTtl(conn, method, [Buffer.from('str')]);
      assert.ok(Buffer.isBuffer(replies[0]), 'dumped after the script was loaded again');
    } finally {
      conn.close();
    }
  });

  it('a key SCAN listed but gone before DUMP is counted as vanished, not fatal; a 3 MiB key is passed on uncopied', async () => {
    const client = await RespConnection.open(source.url);
    try {
      // Incompressible: DUMP compresses values with LZF, a repeated character would shrink.
      await client.command(['SET', 'big-random', randomBytes(3 * 1024 * 1024)]);
      const keys = [Buffer.from('str'), Buffer.from('deleted-meanwhile'), Buffer.from('big-random')];
      const replies = await dumpAndTtl(client, await dumpMethod(client, 0), keys);
      const stats = { keys: 0, vanished: 0, dbs: [], nodes: [], redisVersion: '', rdbVersion: 0 };
      const out = encodeBatch(0, keys, replies, Date.now(), stats);
      assert.equal(out.records, 2);
      assert.equal(stats.vanished, 1);
      assert.ok(stats.rdbVersion >= 9, `RDB version ${stats.rdbVersion} recorded`);
      assert.ok((replies[4] as Buffer).length > 3 * 1024 * 1024);
      assert.ok(out.buffers.includes(replies[4] as Buffer), 'the big payload is the very buffer Redis sent');
      await client.command(['DEL', 'big-random']);
    } finally {
      client.close();
    }
  });

  it('wrong password and unreachable server: one clear line, exit 2', async () => {
    const secured = await startRedis(['--requirepass', 's3cret']);
    servers.push(secured);
    const dir = await tempDir();
    for (const mode of ['rdb', 'logical']) {
      const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'r', url: `redis://127.0.0.1:${secured.port}`, mode }] });
      const wrong = await runCli(['--config', c, 'backup', 'redis'], { env: { REDIS_URL: `redis://:nope@127.0.0.1:${secured.port}` } });
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, /refused the credentials .*check the password/);
      assert.doesNotMatch(wrong.stderr, /nope/);
      const right = await runCli(['--config', c, 'backup', 'redis'], { env: { REDIS_URL: `redis://:s3cret@127.0.0.1:${secured.port}` } });
      assert.equal(right.code, 0, `${mode}: ${right.stderr}`);
    }
    const c = await writeConfig(dir, { repository: { url: `file://${dir}/repo2` }, redis: [{ name: 'r', url: 'redis://127.0.0.1:9', mode: 'logical' }] });
    const down = await runCli(['--config', c, 'backup', 'redis']);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /cannot connect to redis:\/\/127\.0\.0\.1:9.*ECONNREFUSED/);
  });

  it('a key the archive lists twice (SCAN may, while the source rehashes) is restored once and counted; into a confirmed non-empty target it still fails', async () => {
    const repoDir = `${work}/repo`;
    const latest = await findBackup(new FileRepository(repoDir), 'redis', 'logical', 'latest');
    await cloneBackupGeneric(repoDir, 'redis', 'logical', latest.id, '20991230T000000Z', (raw) => {
      const plain = execFileSync('zstd', ['-dc'], { input: raw, maxBuffer: 64 << 20 });
      // The first record after the header, written again before the end record.
      const start = MAGIC.length + 4 + plain.readUInt32BE(MAGIC.length);
      const keyLength = plain.readUInt32BE(start + 3);
      const end = start + 7 + keyLength + 12 + plain.readUInt32BE(start + 7 + keyLength + 8);
      const count = Number(plain.readBigUInt64BE(plain.length - 8));
      const twice = Buffer.concat([plain.subarray(0, plain.length - 9), plain.subarray(start, end), encodeEnd(count + 1)]);
      return execFileSync('zstd', ['-c', '-q'], { input: twice, maxBuffer: 64 << 20 });
    }, true);
    const target = await startRedis();
    servers.push(target);
    const r = await runCli(['--config', cfg, '--json', 'restore', 'redis', '20991230T000000Z', '--name', 'logical', '--target', target.url]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { restored: number; duplicatesSkipped: number };
    assert.equal(out.duplicatesSkipped, 1);
    const keys = Number(await target.client(0).dbsize()) + Number(await target.client(3).dbsize());
    assert.equal(out.restored, keys, 'restored counts each key once');
    const clash = await runCli(['--config', cfg, 'restore', 'redis', '20991230T000000Z', '--name', 'logical', '--target', target.url, '--confirm', `127.0.0.1:${target.port}`]);
    assert.equal(clash.code, 2, 'keys already there before the restore are a clash, not duplicates');
    assert.match(clash.stderr, /BUSYKEY/);
    await rm(path.join(repoDir, 'redis', 'logical', '20991230T000000Z'), { recursive: true });
  });

  it('a corrupt RDB fails the CRC-64 check (level 3); a corrupt DUMP payload fails its record check', async () => {
    const repoDir = `${work}/repo`;
    const repo = new FileRepository(repoDir);
    for (const [name, expect] of [['rdbmode', /CRC-64 [0-9a-f]{16} differs from the trailer/], ['logical', /DUMP payloads fail their CRC-64/]] as const) {
      const latest = await findBackup(repo, 'redis', name, 'latest');
      // Damage the RDB/archive itself, recompress and reseal: levels 1 and 2 pass, 3 must not.
      await cloneBackupGeneric(repoDir, 'redis', name, latest.id, '20991231T000000Z', (raw) => {
        const plain = execFileSync('zstd', ['-dc'], { input: raw, maxBuffer: 64 << 20 });
        const i = Math.floor(plain.length * 0.6);
        plain[i] = (plain[i] ?? 0) ^ 0x01;
        return execFileSync('zstd', ['-c', '-q'], { input: plain, maxBuffer: 64 << 20 });
      }, true);
      const v = await runCli(['--config', cfg, '--json', 'verify', 'redis', '20991231T000000Z', '--name', name]);
      assert.equal(v.code, 2);
      const ver = (JSON.parse(v.stdout) as Json).results[0]!.verification!;
      assert.deepEqual(ver.levels.map((l) => l.ok), [true, true, false], JSON.stringify(ver.levels));
      assert.match(ver.failure ?? '', expect);
      await rm(path.join(repoDir, 'redis', name, '20991231T000000Z'), { recursive: true });
    }
  });
});

describe('knowledge-base backups', () => {
  let work: string;
  let src: string;
  let cfg: string;
  before(async () => {
    work = await tempDir();
    src = path.join(work, 'kb');
    await mkdir(path.join(src, 'docs', 'empty'), { recursive: true });
    await mkdir(path.join(src, 'скрипты'), { recursive: true });
    await writeFile(path.join(src, 'docs', 'faq.md'), '# FAQ\n');
    await writeFile(path.join(src, 'скрипты', 'загрузка_базы.py'), 'print("привет")\n');
    await writeFile(path.join(src, 'docs', `${'long-name-'.repeat(15)}.txt`), 'long');
    await writeFile(path.join(src, 'blob.bin'), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256)));
    await chmod(path.join(src, 'blob.bin'), 0o640);
    await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\n');
    await chmod(path.join(src, 'run.sh'), 0o755);
    await symlink('docs/faq.md', path.join(src, 'faq-link'));
    cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, knowledge: [{ name: 'knowledge_base', path: src }] });
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('round-trips byte for byte: unicode and long names, modes, symlinks, empty directories', async () => {
    assert.equal((await runCli(['--config', cfg, 'backup', 'knowledge'])).code, 0);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'knowledge']);
    assert.equal(v.code, 0, v.stdout);
    const dest = path.join(work, 'restored');
    const r = await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest]);
    assert.equal(r.code, 0, r.stderr);
    const listing = (dir: string) => execFileSync('bash', ['-c', `cd "${dir}" && find . -printf '%p %y %m %s\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum`], { encoding: 'utf8' });
    assert.equal(listing(dest), listing(src));
    assert.equal(await readlink(path.join(dest, 'faq-link')), 'docs/faq.md');
    assert.equal((await stat(path.join(dest, 'docs', 'empty'))).isDirectory(), true);
    const refused = await runCli(['--config', cfg, 'restore', 'knowledge', 'latest', '--target', dest]);
    assert.equal(refused.code, 64, 'a non-empty directory is refused');
    assert.match(refused.stderr, /is not empty .*--confirm/);
  });

  it('verification notices a file whose content differs from the manifest', async () => {
    const repoDir = `${work}/repo`;
    const latest = await findBackup(new FileRepository(repoDir), 'knowledge', 'knowledge_base', 'latest');
    await cloneBackupGeneric(repoDir, 'knowledge', 'knowledge_base', latest.id, '20991231T000000Z', (raw) => {
      const plain = execFileSync('zstd', ['-dc'], { input: raw });
      const i = plain.indexOf('# FAQ');
      plain[i + 2] = 'X'.charCodeAt(0);
      return execFileSync('zstd', ['-c', '-q'], { input: plain });
    }, true);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'knowledge', '20991231T000000Z']);
    assert.equal(v.code, 2);
    assert.match((JSON.parse(v.stdout) as Json).results[0]!.verification!.failure ?? '', /level 3 .*docs\/faq\.md: sha256\/size differ from the manifest/);
  });

  it('rejects entries that would escape the target: "..", absolute paths, writing through a symlink', async () => {
    const cases: [string, EvilHeader[]][] = [
      ['dotdot', [{ name: '../escaped.txt', type: 'file', size: 1 }]],
      ['absolute', [{ name: '/tmp/ops-absolute-escape.txt', type: 'file', size: 1 }]],
      ['via-symlink', [{ name: 'out', type: 'symlink', linkname: '/tmp' }, { name: 'out/ops-symlink-escape.txt', type: 'file', size: 1 }]],
    ];
    for (const [label, headers] of cases) {
      const repoDir = path.join(work, `evil-${label}`);
      const { payload, manifest } = await evilArchive(headers, label);
      const dir = path.join(repoDir, 'knowledge', 'kb', '20260101T000000Z');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'knowledge.tar.zst'), payload);
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
      const repo = new FileRepository(repoDir);
      const entry = await findBackup(repo, 'knowledge', 'kb', 'latest');
      const target = path.join(work, `target-${label}`);
      await assert.rejects(restoreKnowledge(entry, target, {}, { repo }), /rejected: (".." in the path|absolute path|out is a symlink)/, label);
    }
    await assert.rejects(stat(path.join(work, 'escaped.txt')));
    await assert.rejects(stat('/tmp/ops-absolute-escape.txt'));
    await assert.rejects(stat('/tmp/ops-symlink-escape.txt'));
  });
});

type EvilHeader = ArchiveHeader;

const evilArchive = (headers: EvilHeader[], label: string) => sealedKnowledgeArchive(headers, { source: { label } });

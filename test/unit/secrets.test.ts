import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { inlineSecrets, maskUrl, scrub, secretsOf } from '../../src/util/mask.js';

const HOSTILE = ['p#ss', 'a/b?c', 'x@y:z', 'p%23s', 'sp ace', 'ünï', 'a&password=b'];

describe('secrets in connection strings', () => {
  it('masks a password whatever characters it holds, in userinfo and in the query', () => {
    for (const pw of HOSTILE) {
      for (const url of [`redis://:${pw}@cache.internal:6379/0`, `postgresql://app:${pw}@db.internal:5432/callcenter`, `postgresql://db.internal/callcenter?sslmode=require&password=${pw}`, `rediss://user:${pw}@h:6380?password=${pw}`]) {
        const masked = maskUrl(url);
        assert.ok(!masked.includes(pw), `${url} -> ${masked}`);
        assert.match(masked, /\*\*\*/);
      }
    }
    assert.equal(maskUrl('postgresql://app:secret@db:5432/x?sslmode=require'), 'postgresql://app:***@db:5432/x?sslmode=require');
    assert.equal(maskUrl('redis://cache:6379/0'), 'redis://cache:6379/0', 'nothing to hide, nothing changed');
  });

  it('config validation refuses every inline form, naming it', () => {
    const cases: [string, RegExp][] = [
      ['postgresql://db/x?password=hunter22', /the "password" query parameter/],
      ['postgresql://db/x?sslpassword=hunter22', /the "sslpassword" query parameter/],
      ['postgresql://app:p#ss@db/x', /the password before the "@"/],
      ['postgresql://app:a/b?c@db/x', /the password before the "@"/],
    ];
    for (const [url, message] of cases) {
      const r = configSchema.safeParse({ postgres: [{ name: 'db', url }] });
      assert.equal(r.success, false, url);
      assert.match(r.error!.issues.map((i) => i.message).join('\n'), message, url);
    }
    const redis = configSchema.safeParse({ redis: [{ name: 'r', url: 'redis://:p#ss/x@cache:6379' }] });
    assert.equal(redis.success, false);
    assert.ok(configSchema.safeParse({ postgres: [{ name: 'db', url: 'postgresql://app@db/x?sslmode=require' }] }).success, 'a user name alone is fine');
  });

  it('scrubs known secret values from any text, raw and percent-decoded', () => {
    const secrets = secretsOf('redis://:s%23cr%2Fet@h:1/0');
    assert.ok(secrets.includes('s#cr/et') && secrets.includes('s%23cr%2Fet'));
    assert.equal(scrub('auth failed for s#cr/et at h', secrets), 'auth failed for *** at h');
    assert.deepEqual(inlineSecrets('redis://h:6379'), []);
  });
});

describe('secrets never reach output (real Redis with a password holding # / ?)', () => {
  it('config show, healthcheck --json and status --json print no form of the password; the backup manifest holds none', async () => {
    const { startRedis } = await import('../helpers/redis.js');
    const { runCli, tempDir, writeConfig } = await import('../helpers/cli.js');
    const { readdir, readFile, rm } = await import('node:fs/promises');
    const path = await import('node:path');
    const password = 'p#ss/w?rd@x';
    const redis = await startRedis(['--requirepass', password]);
    const dir = await tempDir('ops-secrets-');
    try {
      const cfg = await writeConfig(dir, { repository: { url: `file://${dir}/repo` }, redis: [{ name: 'cache', url: `redis://127.0.0.1:${redis.port}`, mode: 'logical' }] });
      const encoded = `redis://:${encodeURIComponent(password)}@127.0.0.1:${redis.port}`;
      const raw = `redis://:${password}@127.0.0.1:${redis.port}`;
      const forms = [password, encodeURIComponent(password), 'p#ss', 'w?rd'];
      for (const url of [encoded, raw]) {
        for (const args of [['config', 'show'], ['--json', 'config', 'show'], ['--json', 'healthcheck', '--timeout', '2000'], ['--json', 'status']]) {
          const r = await runCli(['--config', cfg, ...args], { env: { REDIS_URL: url } });
          for (const f of forms) assert.ok(!(r.stdout + r.stderr).includes(f), `${args.join(' ')} with ${url === raw ? 'raw' : 'encoded'} URL printed "${f}":\n${r.stdout}\n${r.stderr}`);
        }
      }
      const b = await runCli(['--config', cfg, 'backup', 'redis'], { env: { REDIS_URL: encoded } });
      assert.equal(b.code, 0, b.stderr);
      const id = (await readdir(path.join(dir, 'repo', 'redis', 'cache')))[0]!;
      const manifest = await readFile(path.join(dir, 'repo', 'redis', 'cache', id, 'manifest.json'), 'utf8');
      for (const f of forms) assert.ok(!manifest.includes(f), `manifest holds "${f}"`);
    } finally {
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

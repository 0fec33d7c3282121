import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { absolutiseFileUrl, parseConfig } from '../../src/config/load.js';
import { isScheduleExpression } from '../../src/config/schema.js';
import { ROOT } from '../helpers/cli.js';

const SHIPPED = readFileSync(path.join(ROOT, 'ops.config.json'), 'utf8');

describe('configuration', () => {
  it('the shipped ops.config.json describes the seeds system', () => {
    const cfg = parseConfig(SHIPPED, path.join(ROOT, 'ops.config.json'), {});
    const db = cfg.postgres[0]!;
    assert.equal(db.name, 'callcenter');
    assert.equal(db.backup.schedule, 'cron(0 4 * * ? *)');
    assert.equal(db.backup.retention.maxAgeDays, 30);
    assert.equal(db.verify.schedule, 'cron(30 4 * * ? *)');
    assert.equal(db.partitions?.schedule, 'cron(0 2 1 * ? *)');
    assert.deepEqual(
      db.partitions?.tables.map((t) => [t.table, t.ahead, t.retention]),
      [
        ['public.calls', 3, null],
        ['public.call_turns', 3, 12],
        ['public.call_tool_calls', 3, 12],
      ],
    );
    assert.equal(cfg.effective.repositoryUrl.value, `file://${path.join(ROOT, 'backups')}`);
  });

  it('reports every problem at once, each with its path', () => {
    const bad = JSON.stringify({
      timezone: 'Mars/Olympus',
      repository: { url: 'ftp://nowhere' },
      postgres: [
        { name: 'Bad Name', url: 'postgresql://app:hunter2@db/app', backup: { codec: 'brotli', schedule: 'every day' } },
        { name: 'ok', url: 'postgresql://db/app' },
        { name: 'ok', url: 'postgresql://db/app2' },
      ],
      surprise: true,
    });
    let error: unknown;
    try {
      parseConfig(bad, 'bad.json', {});
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConfigError, 'a ConfigError');
    const paths = error.problems.map((p) => p.path);
    for (const expected of ['timezone', 'repository.url', 'postgres.0.name', 'postgres.0.url', 'postgres.0.backup.codec', 'postgres.0.backup.schedule', 'postgres.2.name', '']) {
      assert.ok(paths.includes(expected), `problem at "${expected}" in ${JSON.stringify(paths)}`);
    }
    assert.match(error.message, /remove the password/);
    assert.equal(error.exitCode, 64);
  });

  it('reports a bad repository URL as a problem of the file', () => {
    assert.throws(() => parseConfig(JSON.stringify({ repository: { url: 'ftp://x' } }), 'c.json', {}), (e: unknown) => {
      return e instanceof ConfigError && e.problems.some((p) => p.path === 'repository.url' && /s3:\/\//.test(p.message));
    });
  });

  it('environment variables override connection settings, and say so', () => {
    const cfg = parseConfig(
      JSON.stringify({ postgres: [{ name: 'a', url: 'postgresql://db/a' }, { name: 'b', url: 'postgresql://db/b' }], redis: [{ name: 'r' }] }),
      '/etc/ops/ops.config.json',
      { DATABASE_URL: 'postgresql://u:secret@other/a', REDIS_URL: 'redis://cache:6379', OPS_REPOSITORY_URL: 's3://bucket/prefix' },
      '/work',
    );
    assert.deepEqual(cfg.effective.postgres.a, { value: 'postgresql://u:secret@other/a', from: 'env DATABASE_URL' });
    assert.deepEqual(cfg.effective.postgres.b, { value: 'postgresql://db/b', from: 'config' });
    assert.deepEqual(cfg.effective.redis.r, { value: 'redis://cache:6379', from: 'env REDIS_URL' });
    assert.deepEqual(cfg.effective.repositoryUrl, { value: 's3://bucket/prefix', from: 'env OPS_REPOSITORY_URL' });
  });

  it('a missing URL with no environment fallback is a problem', () => {
    assert.throws(() => parseConfig(JSON.stringify({ postgres: [{ name: 'a' }] }), 'c.json', {}), /postgres\.0: no url: set it here or in DATABASE_URL/);
  });

  it('relative file URLs resolve against their base', () => {
    assert.equal(absolutiseFileUrl('file://./backups', '/etc/ops'), 'file:///etc/ops/backups');
    assert.equal(absolutiseFileUrl('file:///abs/x', '/etc/ops'), 'file:///abs/x');
    assert.equal(absolutiseFileUrl('s3://b/p', '/etc/ops'), 's3://b/p');
  });

  it('knows EventBridge schedule expressions', () => {
    assert.ok(isScheduleExpression('cron(0 4 * * ? *)'));
    assert.ok(isScheduleExpression('cron(0 1 ? * SUN *)'));
    assert.ok(isScheduleExpression('rate(15 minutes)'));
    assert.ok(!isScheduleExpression('cron(0 4 * * *)'), 'five fields is crontab, not EventBridge');
    assert.ok(!isScheduleExpression('cron(0 4 * * 1 *)'), 'needs ? in day-of-month or day-of-week');
  });

  it('rejects text that is not JSON with the parser message', () => {
    assert.throws(() => parseConfig('{ "postgres": [', 'c.json', {}), /not valid JSON/);
    assert.throws(() => parseConfig('{\n  "repository": {\n    "url" "file:///x"\n  }\n}', 'c.json', {}), /not valid JSON: .*line 3 column \d+/);
  });
});

describe('schedules on daylight-saving days', () => {
  it("warns for every run the zone skips or repeats in the next 12 months, naming the dates (the seeds' Sunday 01:00 in Europe/London)", async () => {
    const { dstWarnings, configDstWarnings } = await import('../../src/config/dst.js');
    const { parseConfig } = await import('../../src/config/load.js');
    const from = new Date('2026-12-01T00:00:00Z');
    const london = dstWarnings('backup knowledge kb', 'cron(0 1 ? * SUN *)', 'Europe/London', from);
    assert.deepEqual(london.map((w) => [w.date, w.kind]), [['2027-03-28', 'skipped'], ['2027-10-31', 'ambiguous']]);
    assert.match(london[0]!.message, /2027-03-28 01:00 does not exist \(clocks go forward 01:00 -> 02:00\); EventBridge Scheduler skips that run/);
    assert.deepEqual(dstWarnings('x', 'cron(30 2 * * ? *)', 'America/New_York', from).map((w) => [w.date, w.kind]), [['2027-03-14', 'skipped']]);
    assert.deepEqual(dstWarnings('x', 'cron(0 4 * * ? *)', 'Europe/London', from), [], '04:00 is never in a transition there');
    assert.deepEqual(dstWarnings('x', 'cron(0 1 ? * SUN *)', 'UTC', from), []);
    assert.deepEqual(dstWarnings('x', 'rate(15 minutes)', 'Europe/London', from), []);
    const cfg = parseConfig(JSON.stringify({ timezone: 'Europe/London', knowledge: [{ name: 'kb', path: '/srv/kb', backup: { schedule: 'cron(0 1 ? * SUN *)' } }] }), '/tmp/ops.config.json', {});
    assert.equal(configDstWarnings(cfg, from).length, 2);
  });

  it('opsctl config validate prints the warnings and still exits 0', async () => {
    const { runCli, tempDir, writeConfig } = await import('../helpers/cli.js');
    const dir = await tempDir('ops-dst-');
    const cfg = await writeConfig(dir, { timezone: 'Europe/London', repository: { url: `file://${dir}/repo` }, knowledge: [{ name: 'kb', path: dir, backup: { schedule: 'cron(0 1 ? * SUN *)' } }] });
    const r = await runCli(['--config', cfg, 'config', 'validate']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /warning: backup knowledge kb cron\(0 1 \? \* SUN \*\) in Europe\/London: \d{4}-03-\d\d 01:00 does not exist/);
  });
});

describe('environment overrides are validated like the file', () => {
  it('a DATABASE_URL or REDIS_URL without its scheme is a problem named by the variable, without quoting its value', () => {
    const text = JSON.stringify({ repository: { url: 'file:///tmp/x' }, postgres: [{ name: 'db', url: 'postgresql://u@h/db' }], redis: [{ name: 'r', url: 'redis://h:6379' }] });
    assert.throws(
      () => parseConfig(text, 'c.json', { DATABASE_URL: 'u:s3cret@127.0.0.1:5432/db', REDIS_URL: '127.0.0.1:6379' }),
      (e: Error & { problems?: { path: string; message: string }[] }) =>
        JSON.stringify(e.problems) === JSON.stringify([
          { path: 'DATABASE_URL', message: 'is not a postgresql:// URL; give one like postgresql://user@host:5432/dbname' },
          { path: 'REDIS_URL', message: 'is not a redis:// URL; give one like redis://host:6379 (rediss:// for TLS)' },
        ]) && !e.message.includes('s3cret'),
    );
    assert.equal(parseConfig(text, 'c.json', { DATABASE_URL: 'postgres://u@h:5432/db' }).effective.postgres.db?.value, 'postgres://u@h:5432/db');
  });
});

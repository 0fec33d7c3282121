import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ALERTS, renderPrometheusRules } from '../../src/metrics/alerts.js';
import { EmfSink } from '../../src/metrics/emf-sink.js';
import { RemoteWriteSink } from '../../src/metrics/prometheus/remote-write.js';
import { sigv4Signer } from '../../src/metrics/prometheus/sigv4.js';
import { decodeWriteRequest } from '../../src/metrics/prometheus/write-request.js';
import { RecordingMetrics } from '../../src/metrics/recording-metrics.js';
import { silentLog } from '../../src/log.js';
import { postgresConfig, ROOT, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startPrometheus, type LocalPrometheus } from '../helpers/prometheus.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A receiver that answers with the given statuses in turn (0: never answers) and records what it got. */
async function receiver(statuses: number[]): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      if (status === 0) return;
      res.writeHead(status, status === 429 ? { 'Retry-After': '1' } : {}).end(status >= 400 ? 'nope' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/api/v1/write`, received, close: () => new Promise((r) => (server.close(() => r()), server.closeAllConnections())) };
}

const sink = (url: string, timeoutMs = 5_000) =>
  new RemoteWriteSink({ url, auth: { type: 'none' }, timeoutMs, userAgent: 'ops-automation/test', sleep: () => Promise.resolve() });

describe('metrics', () => {
  let prom: LocalPrometheus;
  let db: TestDatabase;
  before(async () => {
    prom = await startPrometheus();
    db = await createSeedDatabase(300);
  });
  after(async () => {
    await prom?.stop();
    await db?.drop();
  });

  it('a real backup run pushes its metrics to a real Prometheus, names and labels as designed', async () => {
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('callcenter', db.url, `file://${dir}/repo`, { partitions: { tables: [{ table: 'public.calls' }] } }));
    const backup = await runCli(['--config', cfg, '--json', 'backup', 'postgres'], { env: { OPS_PROMETHEUS_URL: prom.writeUrl } });
    assert.equal(backup.code, 0, backup.stderr);
    const result = (JSON.parse(backup.stdout) as { results: { bytes: number; id: string }[] }).results[0]!;
    const last = await prom.query('backup_last_success_timestamp_seconds');
    assert.equal(last.length, 1);
    assert.deepEqual(last[0]!.metric, { __name__: 'backup_last_success_timestamp_seconds', component: 'postgres', name: 'callcenter', job: 'ops-automation' });
    const manifest = JSON.parse(readFileSync(path.join(dir, 'repo', 'postgres', 'callcenter', result.id, 'manifest.json'), 'utf8'));
    assert.equal(Number(last[0]!.value[1]), new Date(manifest.finishedAt).getTime() / 1000);
    assert.equal(Number((await prom.query('backup_last_size_bytes{component="postgres"}'))[0]!.value[1]), result.bytes);
    assert.ok(Number((await prom.query('backup_duration_seconds'))[0]!.value[1]) > 0);
    assert.equal((await prom.query('backup_errors_total'))[0]!.value[1], '0');

    const status = await runCli(['--config', cfg, 'status', '--emit'], { env: { OPS_PROMETHEUS_URL: prom.writeUrl } });
    assert.equal(status.code, 1, `unverified: degraded\n${status.stdout}${status.stderr}`);
    const age = await prom.query('backup_age_seconds');
    assert.ok(Number(age[0]!.value[1]) >= 0 && Number(age[0]!.value[1]) < 120);
    assert.equal((await prom.query('ops_freshness_last_run_timestamp_seconds')).length, 1);
    assert.equal((await prom.query('partition_last_success_timestamp_seconds{database="callcenter"}'))[0]!.value[1], '0', 'never ran: epoch, so the stale alert fires');
  });

  it('a failed job records an error that increase() sees, and the push never fails the job', async () => {
    const dir = await tempDir();
    const cfg = await writeConfig(dir, postgresConfig('broken', 'postgresql://127.0.0.1:9/none', `file://${dir}/repo`));
    const r = await runCli(['--config', cfg, 'backup', 'postgres'], { env: { OPS_PROMETHEUS_URL: prom.writeUrl } });
    assert.equal(r.code, 2);
    const inc = await prom.query('increase(backup_errors_total{name="broken"}[5m])');
    assert.ok(Number(inc[0]?.value[1]) > 0, JSON.stringify(inc));

    const unreachable = { ...postgresConfig('callcenter', db.url, `file://${dir}/repo2`), metrics: { prometheus: { timeoutMs: 1000 } } };
    const good = await runCli(['--config', await writeConfig(await tempDir(), unreachable), 'backup', 'postgres'], {
      env: { OPS_PROMETHEUS_URL: 'http://127.0.0.1:9/api/v1/write' },
    });
    assert.equal(good.code, 0, 'an unreachable receiver does not fail the backup');
    assert.match(good.stderr, /metrics to prometheus-remote-write not sent: gave up after \d+ attempts/);
  });

  it('remote write: headers and payload per the 1.0 spec; 500 then 204 is retried', async () => {
    const rx = await receiver([500, 204]);
    try {
      await sink(rx.url).send([
        { name: 'backup_last_size_bytes', labels: { name: 'callcenter', component: 'postgres', empty: '' }, value: 42, timestampMs: 1_700_000_000_000, unit: 'Bytes' },
      ]);
      assert.equal(rx.received.length, 2);
      const h = rx.received[1]!.headers;
      assert.equal(h['content-encoding'], 'snappy');
      assert.equal(h['content-type'], 'application/x-protobuf');
      assert.equal(h['x-prometheus-remote-write-version'], '0.1.0');
      assert.equal(h['user-agent'], 'ops-automation/test');
      assert.deepEqual(decodeWriteRequest(rx.received[1]!.body), [
        {
          labels: [
            { name: '__name__', value: 'backup_last_size_bytes' },
            { name: 'component', value: 'postgres' },
            { name: 'name', value: 'callcenter' },
          ],
          samples: [{ value: 42, timestamp: 1_700_000_000_000 }],
        },
      ]);
    } finally {
      await rx.close();
    }
  });

  it('remote write: 400 is not retried; 429 is; the deadline ends the retries', async () => {
    const sample = [{ name: 'x', labels: {}, value: 1, timestampMs: 1, unit: 'None' as const }];
    const bad = await receiver([400]);
    const busy = await receiver([429, 429, 204]);
    const down = await receiver([503, 0]);
    try {
      await assert.rejects(sink(bad.url).send(sample), /rejected, not retried: HTTP 400: nope/);
      assert.equal(bad.received.length, 1);
      await sink(busy.url).send(sample);
      assert.equal(busy.received.length, 3);
      const started = Date.now();
      // The second attempt gets no answer and is cut short by the deadline: the error
      // still names what the receiver last answered.
      await assert.rejects(new RemoteWriteSink({ url: down.url, auth: { type: 'none' }, timeoutMs: 300, userAgent: 't' }).send(sample), /gave up after \d+ attempts in 300 ms: HTTP 503/);
      assert.ok(Date.now() - started < 2_000);
      assert.equal(down.received.length, 2);
    } finally {
      await Promise.all([bad.close(), busy.close(), down.close()]);
    }
  });

  it('remote write: basic, bearer and SigV4 (service aps) authorisation headers', async () => {
    const rx = await receiver([204]);
    const sample = [{ name: 'x', labels: {}, value: 1, timestampMs: 1, unit: 'None' as const }];
    await new RemoteWriteSink({ url: rx.url, auth: { type: 'basic', username: 'u', password: 'p' }, timeoutMs: 1000, userAgent: 't' }).send(sample);
    await new RemoteWriteSink({ url: rx.url, auth: { type: 'bearer', token: 'tok' }, timeoutMs: 1000, userAgent: 't' }).send(sample);
    const sign = await sigv4Signer('eu-central-1', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' });
    await new RemoteWriteSink({ url: rx.url, auth: { type: 'sigv4', region: 'eu-central-1', sign }, timeoutMs: 1000, userAgent: 't' }).send(sample);
    await rx.close();
    assert.equal(rx.received[0]!.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
    assert.equal(rx.received[1]!.headers.authorization, 'Bearer tok');
    assert.match(String(rx.received[2]!.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-central-1\/aps\/aws4_request, SignedHeaders=[a-z0-9;-]*content-encoding[a-z0-9;-]*host[a-z0-9;-]*x-amz-date[a-z0-9;-]*, Signature=[0-9a-f]{64}$/);
    assert.match(String(rx.received[2]!.headers['x-amz-content-sha256'] ?? rx.received[2]!.headers['x-amz-date']), /.+/);
  });

  it('EMF output follows the embedded metric format specification', async () => {
    const out = new PassThrough();
    const lines: string[] = [];
    out.setEncoding('utf8').on('data', (c: string) => lines.push(...c.split('\n').filter(Boolean)));
    const metrics = new RecordingMetrics([new EmfSink('OpsAutomationTest', out)], silentLog);
    metrics.backupSucceeded('postgres', 'callcenter', { at: new Date('2026-02-14T04:03:00Z'), durationSeconds: 12.5, bytes: 1234 });
    metrics.backupFailed('redis', 'sessions');
    metrics.partitionRun('callcenter', { ok: true, skipped: false, at: new Date('2026-02-01T02:00:00Z'), created: { 'public.calls': 1 }, dropped: {}, coverage: { 'public.calls': 3 } });
    await metrics.flush();
    await new Promise((r) => setImmediate(r));
    const docs = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } });
    assert.ok(docs.length >= 4);
    for (const doc of docs) {
      assert.equal(typeof doc._aws.Timestamp, 'number');
      assert.equal(doc._aws.CloudWatchMetrics.length, 1);
      const directive = doc._aws.CloudWatchMetrics[0]!;
      assert.equal(directive.Namespace, 'OpsAutomationTest');
      for (const set of directive.Dimensions) for (const d of set) assert.equal(typeof doc[d], 'string', `dimension ${d} is a string member`);
      for (const m of directive.Metrics) assert.equal(typeof doc[m.Name], 'number', `metric ${m.Name} has a numeric value`);
      assert.ok(!('service' in doc), 'no implicit service dimension');
    }
    const pg = docs.find((d) => d.component === 'postgres')!;
    assert.deepEqual(pg._aws.CloudWatchMetrics[0]!.Dimensions, [['component', 'name']]);
    assert.equal(pg.backup_last_size_bytes, 1234);
    assert.equal(pg.backup_duration_seconds, 12.5);
    assert.equal(pg.backup_last_success_timestamp_seconds, Date.parse('2026-02-14T04:03:00Z') / 1000);
    assert.deepEqual(pg._aws.CloudWatchMetrics[0]!.Metrics.find((m) => m.Name === 'backup_last_size_bytes'), { Name: 'backup_last_size_bytes', Unit: 'Bytes' });
    const redis = docs.find((d) => d.component === 'redis')!;
    assert.equal(redis.backup_errors_total, 1, 'the counter baseline is not sent to CloudWatch');
  });

  it('alert rules: the committed file is generated from the thresholds in code, and promtool checks and tests it', () => {
    const file = path.join(ROOT, 'doc', 'prometheus', 'alerts.yml');
    assert.equal(readFileSync(file, 'utf8'), renderPrometheusRules(), 'run npm run gen:alerts');
    assert.match(execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' }), new RegExp(`SUCCESS: ${ALERTS.length} rules found`));
    assert.equal(ALERTS.length, 20, 'every alert of src/metrics/alerts.ts, no more');
    for (const tests of ['alerts.test.yml', 'alerts-long.test.yml']) {
      const out = execFileSync('promtool', ['test', 'rules', path.join(ROOT, 'doc', 'prometheus', tests)], { encoding: 'utf8' });
      assert.match(out, /SUCCESS/, tests);
    }
  });
});

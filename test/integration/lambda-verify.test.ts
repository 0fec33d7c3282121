import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseVerifyEvent } from '../../lambdas/verify/event.js';
import { verify } from '../../lambdas/verify/handler.js';
import { fileConfigSource } from '../../src/config/source.js';
import { silentLog } from '../../src/log.js';
import { postgresConfig, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';
import { filesUnder } from '../helpers/repo.js';

describe('verify Lambda handler', () => {
  let source: TestDatabase;
  let work: string;
  let cfg: string;
  let id: string;
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });

  before(async () => {
    source = await createSeedDatabase(500);
    work = await tempDir();
    cfg = await writeConfig(work, postgresConfig('callcenter', source.url, `file://${path.join(work, 'repo')}`));
    const r = await runCli(['--config', cfg, '--json', 'backup', 'postgres']);
    assert.equal(r.code, 0, r.stderr);
    id = (JSON.parse(r.stdout) as { results: { id: string }[] }).results[0]!.id;
  });
  after(async () => {
    await source?.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('reads the S3 "Object Created" event of a manifest as a verify request', () => {
    const event = { source: 'aws.s3', 'detail-type': 'Object Created', detail: { bucket: { name: 'b' }, object: { key: 'prod/postgres/callcenter/20260214T040000Z/manifest.json' } } };
    assert.deepEqual(parseVerifyEvent(event), { component: 'postgres', name: 'callcenter', backupId: '20260214T040000Z' });
    const payload = { ...event, detail: { object: { key: 'prod/postgres/callcenter/20260214T040000Z/db.dump.zst' } } };
    assert.deepEqual(parseVerifyEvent(payload), { ignored: 'not a manifest: prod/postgres/callcenter/20260214T040000Z/db.dump.zst' });
    assert.deepEqual(parseVerifyEvent({ component: 'postgres' }), { component: 'postgres', name: undefined, backupId: 'latest' });
    assert.throws(() => parseVerifyEvent({ component: 'postgres', backupId: 'yesterday' }), /backupId/);
  });

  it('verifies the backup named by the event and writes verification.json', async () => {
    const out = await verify({ component: 'postgres', backupId: id }, { source: fileConfigSource(cfg, silentLog), logger });
    assert.ok('results' in out);
    assert.equal(out.results[0]?.verification?.levelPassed, 3);
    assert.ok((await filesUnder(path.join(work, 'repo'))).some((f) => f.endsWith(`${id}/verification.json`)));
  });

  it('fails the invocation (throws) when verification fails, so the Lambda error alarm fires', async () => {
    const payload = (await filesUnder(path.join(work, 'repo'))).find((f) => f.endsWith('.zst'))!;
    await writeFile(path.join(work, 'repo', payload), 'garbage');
    await assert.rejects(verify({ component: 'postgres', backupId: id }, { source: fileConfigSource(cfg, silentLog), logger }), /VERIFY_FAILED|verification failed: postgres\/callcenter/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupEntry } from '../../src/backup/catalog.js';
import { backupIdTime, compareBackupIdsDesc, formatBackupId, isBackupId } from '../../src/backup/layout.js';
import type { Manifest, Verification } from '../../src/backup/manifest.js';
import { planRetention } from '../../src/backup/retention.js';
import { maskUrl } from '../../src/util/mask.js';

describe('backup ids', () => {
  it('are the UTC start second, sortable, with a suffix on collision', () => {
    const at = new Date('2026-02-14T04:00:00.789Z');
    assert.equal(formatBackupId(at), '20260214T040000Z');
    assert.equal(formatBackupId(at, 2), '20260214T040000Z-2');
    assert.ok(isBackupId('20260214T040000Z-2'));
    assert.ok(!isBackupId('2026-02-14'));
    assert.equal(backupIdTime('20260214T040000Z-2').toISOString(), '2026-02-14T04:00:00.000Z');
    const ids = ['20260214T040000Z', '20260214T040000Z-10', '20260215T000000Z', '20260214T040000Z-2'];
    assert.deepEqual(ids.sort(compareBackupIdsDesc), ['20260215T000000Z', '20260214T040000Z-10', '20260214T040000Z-2', '20260214T040000Z']);
  });
});

const NOW = new Date('2026-03-31T12:00:00Z');

function entry(daysAgo: number, state: 'verified' | 'failed' | 'unverified' | 'incomplete', lastWriteHoursAgo = daysAgo * 24): BackupEntry {
  const startedAt = new Date(NOW.getTime() - daysAgo * 86_400_000);
  const id = formatBackupId(startedAt);
  const e: BackupEntry = {
    component: 'postgres',
    name: 'db',
    id,
    startedAt,
    objects: [{ key: `postgres/db/${id}/db.dump`, size: 100, lastModified: new Date(NOW.getTime() - lastWriteHoursAgo * 3_600_000) }],
    lastWrite: new Date(NOW.getTime() - lastWriteHoursAgo * 3_600_000),
  };
  if (state !== 'incomplete') e.manifest = { id } as Manifest;
  if (state === 'verified' || state === 'failed') e.verification = { ok: state === 'verified' } as Verification;
  return e;
}

const actions = (plan: ReturnType<typeof planRetention>) => plan.map((d) => `${d.action}`);

describe('retention plan', () => {
  const policy = { maxAgeDays: 30, keepVerified: 3 };

  it('deletes what is older than the retention period', () => {
    const plan = planRetention([entry(1, 'verified'), entry(2, 'verified'), entry(3, 'verified'), entry(10, 'verified'), entry(31, 'verified'), entry(45, 'verified')], policy, NOW);
    assert.deepEqual(actions(plan), ['keep', 'keep', 'keep', 'keep', 'delete', 'delete']);
  });

  it('keeps the newest verified backups whatever their age when the job stopped for weeks', () => {
    const plan = planRetention([entry(40, 'verified'), entry(41, 'failed'), entry(42, 'verified'), entry(43, 'verified'), entry(44, 'verified')], policy, NOW);
    assert.deepEqual(actions(plan), ['keep', 'delete', 'keep', 'keep', 'delete']);
  });

  it('keeps the newest complete backups when none is verified yet', () => {
    const plan = planRetention([entry(40, 'unverified'), entry(41, 'unverified'), entry(42, 'unverified'), entry(43, 'unverified')], policy, NOW);
    assert.deepEqual(actions(plan), ['keep', 'keep', 'keep', 'delete']);
  });

  it('newer unverified backups do not push verified ones out of protection', () => {
    const plan = planRetention([entry(31, 'unverified'), entry(32, 'unverified'), entry(33, 'verified'), entry(34, 'unverified')], policy, NOW);
    assert.deepEqual(actions(plan), ['delete', 'delete', 'keep', 'delete']);
  });

  it('never touches an incomplete backup that may still be written; removes one abandoned for a day', () => {
    const plan = planRetention([entry(0.01, 'incomplete', 0.1), entry(40, 'incomplete'), entry(2, 'verified')], policy, NOW);
    assert.deepEqual(
      plan.map((d) => [d.action, d.reason]),
      [
        ['skip', 'incomplete, may still be written'],
        ['keep', 'among newest 3 verified'],
        ['delete', 'incomplete (no manifest) for over a day'],
      ],
    );
  });
});

describe('masking', () => {
  it('hides passwords in connection strings', () => {
    assert.equal(maskUrl('postgresql://app:s3cret@db:5432/x'), 'postgresql://app:***@db:5432/x');
    assert.equal(maskUrl('redis://:pw@cache:6379'), 'redis://:***@cache:6379');
    assert.equal(maskUrl('postgresql://db/x'), 'postgresql://db/x');
  });
});

describe('S3 part size', () => {
  it('keeps the configured size for small objects and grows so 9,000 parts hold the hint', async () => {
    const { partSizeFor } = await import('../../src/repository/s3-repository.js');
    const MiB = 1024 * 1024;
    assert.equal(partSizeFor(6, undefined), 6 * MiB);
    assert.equal(partSizeFor(6, 300 * MiB), 6 * MiB);
    assert.equal(partSizeFor(6, 200 * 1024 * MiB), 23 * MiB, '200 GiB / 9,000 parts = 22.8 MiB, rounded up');
    assert.ok(Math.ceil((200 * 1024 * MiB) / partSizeFor(6, 200 * 1024 * MiB)) <= 10_000);
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { BackupBrokenError, BackupNotFoundError, findBackup } from '../../src/backup/catalog.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { tempDir } from '../helpers/cli.js';

// A manifest lists every table of the database (6.6 MB at 50,000 tables): `latest` must not
// read the manifest of every kept backup to find the newest. The repository below counts
// the manifests read.
class CountingRepository extends FileRepository {
  manifestsRead: string[] = [];
  override async getBytes(key: string): Promise<Buffer | undefined> {
    if (key.endsWith('/manifest.json')) this.manifestsRead.push(key.split('/')[2]!);
    return super.getBytes(key);
  }
}

const IDS = ['20261201T000000Z', '20261202T000000Z', '20261203T000000Z', '20261204T000000Z'];

async function backup(repo: FileRepository, id: string, manifest: 'ok' | 'corrupt' | 'none' | 'short payload'): Promise<void> {
  const payload = Buffer.from(`dump ${id}`);
  const key = `postgres/db/${id}/db.dump.zst`;
  await repo.putBytes(key, manifest === 'short payload' ? payload.subarray(1) : payload);
  if (manifest === 'none') return;
  const record = {
    formatVersion: 1,
    id,
    component: 'postgres',
    name: 'db',
    payload: { key, bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), streamCodec: 'zstd', compression: 'zstd -1', format: 'pg_dump custom' },
    startedAt: '2026-12-01T00:00:00Z',
    finishedAt: '2026-12-01T00:00:01Z',
    durationSeconds: 1,
    tools: {},
    source: {},
  };
  await repo.putBytes(`postgres/db/${id}/manifest.json`, manifest === 'corrupt' ? '{"formatVersion": 1,' : JSON.stringify(record));
}

describe('findBackup reads the records of the backups it looks at, newest first, and no others', () => {
  let work = '';
  before(async () => {
    work = await tempDir('ops-find-backup-');
  });
  after(async () => rm(work, { recursive: true, force: true }));

  const repoWith = async (dir: string, states: ('ok' | 'corrupt' | 'none' | 'short payload')[]) => {
    const repo = new CountingRepository(`${work}/${dir}`);
    for (const [i, state] of states.entries()) await backup(repo, IDS[i]!, state);
    repo.manifestsRead = [];
    return repo;
  };

  it('latest among four complete backups: the newest, one manifest read', async () => {
    const repo = await repoWith('four', ['ok', 'ok', 'ok', 'ok']);
    assert.equal((await findBackup(repo, 'postgres', 'db', 'latest')).id, IDS[3]);
    assert.deepEqual(repo.manifestsRead, [IDS[3]]);
  });

  it('latest past a backup in progress, a corrupt manifest and a short payload: the newest complete one, no older manifest read', async () => {
    const repo = await repoWith('mixed', ['ok', 'ok', 'corrupt', 'short payload']);
    const entry = await findBackup(repo, 'postgres', 'db', 'latest');
    assert.equal(entry.id, IDS[1]);
    assert.deepEqual(repo.manifestsRead, [IDS[3], IDS[2], IDS[1]]);
    const inProgress = await repoWith('in-progress', ['ok', 'ok', 'ok', 'none']);
    assert.equal((await findBackup(inProgress, 'postgres', 'db', 'latest')).id, IDS[2]);
    assert.deepEqual(inProgress.manifestsRead, [IDS[2]]);
  });

  it('an id given: only its manifest; broken and unknown ids are refused as before, with the nearest complete id suggested', async () => {
    const repo = await repoWith('by-id', ['ok', 'ok', 'short payload', 'ok']);
    assert.equal((await findBackup(repo, 'postgres', 'db', IDS[0]!)).id, IDS[0]);
    assert.deepEqual(repo.manifestsRead, [IDS[0]]);
    await assert.rejects(findBackup(repo, 'postgres', 'db', IDS[2]!), (e: unknown) => e instanceof BackupBrokenError && /holds \d+ bytes, manifest says/.test(e.message));
    await assert.rejects(findBackup(repo, 'postgres', 'db', '20261204T000001Z'), (e: unknown) => e instanceof BackupNotFoundError && e.message.includes(`did you mean ${IDS[3]}?`));
  });

  it('latest with nothing complete is the repository\'s state (exit 2), not the input\'s', async () => {
    const repo = await repoWith('none', ['corrupt', 'none']);
    await assert.rejects(findBackup(repo, 'postgres', 'db', 'latest'), (e: unknown) => e instanceof BackupNotFoundError && e.exitCode === 2);
  });
});

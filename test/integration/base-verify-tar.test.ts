import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { openRepository } from '../../src/repository/open.js';
import type { Repository } from '../../src/repository/repository.js';
import type { BackupEntry } from '../../src/backup/catalog.js';
import { verifyPostgresBase } from '../../src/verify/base-verify.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
const LABEL = 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n';

/**
 * Level 2 of `verify --base` reads the tar by its headers (tar-scan.ts), not member by
 * member: every file PostgreSQL's backup_manifest lists must be in the tar at its size. The
 * tars here are GNU tar's own (the ecosystem's tool writes them; its `tar -tv` is the
 * judge of the sizes), zstd-compressed, stored as a base backup's payload.
 */
describe('verify --base level 2 against GNU tar: every file backup_manifest lists, at its size', () => {
  let dir: string;
  let repo: Repository;
  before(async () => {
    dir = await tempDir('ops-base-verify-tar-');
    repo = openRepository(`file://${path.join(dir, 'repo')}`);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A tar of backup_label, a 1000-byte relation file and backup_manifest (which says `manifestSize` for it); returns the entry. */
  async function base(label: string, manifestSize: number, damage?: (tar: Buffer) => Buffer): Promise<BackupEntry> {
    const src = path.join(dir, `src-${label}`);
    await mkdir(path.join(src, 'base', '1'), { recursive: true });
    await writeFile(path.join(src, 'backup_label'), LABEL);
    await writeFile(path.join(src, 'base', '1', '1259'), Buffer.alloc(1000, 7));
    await writeFile(path.join(src, 'backup_manifest'), JSON.stringify({ 'PostgreSQL-Backup-Manifest-Version': 1, Files: [{ Path: 'backup_label', Size: LABEL.length }, { Path: 'base/1/1259', Size: manifestSize }], 'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/2000100' }] }));
    let tar: Buffer = execFileSync('tar', ['-c', '-f', '-', '--format=ustar', '-C', src, 'backup_label', 'base', 'backup_manifest']);
    // GNU tar's own listing: the sizes level 2 must see.
    const listing = execFileSync('tar', ['-tvf', '-'], { input: tar }).toString();
    assert.match(listing, /1000 .* base\/1\/1259/);
    if (damage) tar = damage(tar);
    const payload = execFileSync('zstd', ['-q', '-c'], { input: tar });
    const key = `postgres/main@base/${label}/base.tar.zst`;
    await repo.putBytes(key, payload);
    return {
      component: 'postgres',
      name: 'main@base',
      id: label,
      startedAt: new Date(),
      objects: [],
      lastWrite: new Date(),
      manifest: {
        formatVersion: 1,
        id: label,
        component: 'postgres',
        name: 'main@base',
        payload: { key, bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), streamCodec: 'zstd', compression: 'zstd', format: 'pg_basebackup-tar' },
        startedAt: new Date().toISOString(),
        finishedAt: new Date().toISOString(),
        durationSeconds: 0,
        tools: {},
        source: {},
        details: { kind: 'base', startLsn: '0/2000028', stopLsn: '0/2000100', timeline: 1, stopSegment: '000000010000000000000002', walArchived: true, serverVersion: '15', segmentBytes: 16 << 20 },
      },
    } as BackupEntry;
  }

  it('a tar whose files are as the manifest lists them: level 2 passes (level 3 fails: no WAL here)', async () => {
    const v = await verifyPostgresBase(await base('good', 1000), 'main', { repo, log: silent });
    assert.equal(v.levels[1]!.ok, true, JSON.stringify(v.levels));
    assert.match(v.levels[1]!.detail!, /^2 files as backup_manifest lists them/);
  });

  it('the manifest says 999 bytes, the tar holds 1000: level 2 fails naming the file', async () => {
    const v = await verifyPostgresBase(await base('size', 999), 'main', { repo, log: silent });
    assert.equal(v.levels[1]!.ok, false);
    assert.match(v.levels[1]!.detail!, /1 file\(s\) differ from backup_manifest, first base\/1\/1259 \(1000 bytes, manifest 999\)/);
  });

  it('a tar cut inside a member\'s data (GNU tar: "Unexpected EOF in archive"): level 2 fails, unreadable', async () => {
    // Inside base/1/1259's 1000 bytes (its header at 2048, its data from 2560). Cut between
    // members GNU tar -t lists what it has and exits 0; the manifest is then missing here.
    const cut = (tar: Buffer) => {
      const t = tar.subarray(0, 3000);
      assert.throws(() => execFileSync('tar', ['-tf', '-'], { input: t, stdio: ['pipe', 'ignore', 'ignore'] }), 'GNU tar refuses this cut too');
      return t;
    };
    const v = await verifyPostgresBase(await base('cut', 1000, cut), 'main', { repo, log: silent });
    assert.equal(v.levels[1]!.ok, false);
    assert.match(v.levels[1]!.detail!, /tar unreadable: the tar stream ended inside a member: cut off/);
  });

  it('a flipped byte in a header: the checksum catches it, as GNU tar does', async () => {
    const flip = (tar: Buffer) => {
      const t = Buffer.from(tar);
      t[512 * 2 + 10] = t[512 * 2 + 10]! ^ 0x20; // inside the second member's header name
      return t;
    };
    const v = await verifyPostgresBase(await base('flip', 1000, flip), 'main', { repo, log: silent });
    assert.equal(v.levels[1]!.ok, false, JSON.stringify(v.levels));
    assert.match(v.levels[1]!.detail!, /tar unreadable: tar header checksum mismatch/);
  });
});

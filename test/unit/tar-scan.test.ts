import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { scanTar, tarSize, TarScanError } from '../../src/backup/tar-scan.js';
import { tempDir } from '../helpers/cli.js';

async function scan(tar: Buffer, wanted: string[], chunk = 7919): Promise<Map<string, Buffer>> {
  const s = scanTar(new Set(wanted));
  for (let i = 0; i < tar.length; i += chunk) s.push(tar.subarray(i, i + chunk));
  s.end();
  await s.done;
  return s.files;
}

describe('tar scan (the base backup picks backup_label and backup_manifest out of the stream): against GNU tar', () => {
  for (const format of ['gnu', 'ustar', 'pax'] as const) {
    it(`${format} archives: the wanted members' bytes equal what GNU tar extracts; others are skipped; odd chunk sizes`, async () => {
      const dir = await tempDir('ops-tarscan-');
      try {
        const src = path.join(dir, 'src');
        await mkdir(path.join(src, 'base', '1'), { recursive: true });
        await writeFile(path.join(src, 'backup_label'), 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n');
        await writeFile(path.join(src, 'base', '1', 'big'), Buffer.alloc(3 * 1024 * 1024 + 77, 7));
        await writeFile(path.join(src, 'empty'), '');
        // One that has a wanted name one level down: not it.
        await writeFile(path.join(src, 'base', 'backup_manifest'), 'not this one');
        await writeFile(path.join(src, 'backup_manifest'), JSON.stringify({ 'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/2000100' }], pad: 'x'.repeat(1000) }));
        const longDir = path.join(src, 'd'.repeat(90), 'e'.repeat(60));
        await mkdir(longDir, { recursive: true });
        await writeFile(path.join(longDir, 'f'), 'long');
        const members = ['backup_label', 'base', 'empty', 'd'.repeat(90), 'backup_manifest'];
        const tar = execFileSync('tar', ['-c', `--format=${format}`, '-f', '-', '-C', src, ...members], { maxBuffer: 64 << 20 });
        const got = await scan(tar, ['backup_label', 'backup_manifest', 'empty']);
        for (const name of ['backup_label', 'backup_manifest', 'empty']) {
          const gnu = execFileSync('tar', ['-x', '-O', '-f', '-', name], { input: tar, maxBuffer: 64 << 20 });
          assert.ok(got.get(name)?.equals(gnu), `${format}: ${name}`);
        }
        assert.deepEqual([...got.keys()].sort(), ['backup_label', 'backup_manifest', 'empty']);
        // Cut off inside a member: refused, never a partial result taken as whole.
        await assert.rejects(scan(tar.subarray(0, 512 * 3 + 100), ['backup_label']), TarScanError);
        // A damaged header: refused.
        const damaged = Buffer.from(tar);
        damaged[0] = damaged[0]! ^ 0x20;
        await assert.rejects(scan(damaged, ['backup_label']), /checksum/);
        const garbage = Buffer.alloc(4096, 0x41);
        await assert.rejects(scan(garbage, ['backup_label']), /checksum/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('sizes: octal with NUL or space, and GNU base-256 for members over 8 GiB', () => {
    assert.equal(tarSize(Buffer.from('00000001750\0', 'latin1')), 1000);
    assert.equal(tarSize(Buffer.from('1750 \0\0\0\0\0\0\0', 'latin1')), 1000);
    const b256 = Buffer.alloc(12);
    b256[0] = 0x80;
    b256.writeUIntBE(10 * 1024 ** 3, 6, 6);
    assert.equal(tarSize(b256), 10 * 1024 ** 3);
    assert.throws(() => tarSize(Buffer.from('12x4\0\0\0\0\0\0\0\0', 'latin1')), TarScanError);
  });
});

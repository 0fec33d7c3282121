import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pgRestoreReads, pgRestoreTooOld } from '../../src/pg-archive/versions.js';

describe('which pg_restore reads which pg_dump archive', () => {
  it('a pg_restore as new as the pg_dump, or newer, reads it', () => {
    for (const [r, d] of [[15, 15], [15, 12], [17, 15], [18, 17], [19, 18], [11, 11]] as const) assert.equal(pgRestoreReads(r, d), true, `${r} reads ${d}`);
  });

  it('an older pg_restore reads it only where the archive version is one it knows: 17 reads 18 (both 1.16); 15 reads neither 16 (1.15) nor 17 (1.16); 16 not 17', () => {
    assert.equal(pgRestoreReads(17, 18), true);
    assert.equal(pgRestoreReads(12, 15), true);
    assert.equal(pgRestoreReads(15, 16), false);
    assert.equal(pgRestoreReads(15, 17), false);
    assert.equal(pgRestoreReads(15, 18), false);
    assert.equal(pgRestoreReads(16, 17), false);
  });

  it('a major the table does not know is left to pg_restore (undefined), never guessed', () => {
    assert.equal(pgRestoreReads(18, 19), undefined);
    assert.equal(pgRestoreReads(11, 15), undefined);
  });

  it('the operator is told what to run: the first major that reads the archive, its path and package', () => {
    assert.equal(
      pgRestoreTooOld('15.20', '17.12'),
      'pg_restore 15.20 cannot read this backup: pg_dump 17.12 wrote it (archive version 1.16), which pg_restore reads from PostgreSQL 17 on. ' +
        'Run with pg_restore 17 or newer: OPS_PG_RESTORE=<its path> (Debian: /usr/lib/postgresql/17/bin/pg_restore, package postgresql-client-17)',
    );
    assert.match(pgRestoreTooOld('15.20', '16.4') ?? '', /archive version 1\.15\), which pg_restore reads from PostgreSQL 16 on/);
    assert.match(pgRestoreTooOld('16.4', '18.1') ?? '', /reads from PostgreSQL 17 on/);
  });

  it('says nothing where pg_restore reads it, or where a version is missing or unreadable', () => {
    assert.equal(pgRestoreTooOld('17.7', '18.1'), undefined);
    assert.equal(pgRestoreTooOld('15.20', '15.20'), undefined);
    assert.equal(pgRestoreTooOld('15.20', undefined), undefined);
    assert.equal(pgRestoreTooOld('unavailable: spawn pg_restore ENOENT', '17.12'), undefined);
    assert.equal(pgRestoreTooOld('15.20', 'nonsense'), undefined);
  });
});

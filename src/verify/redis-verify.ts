import { Writable } from 'node:stream';
import type { BackupEntry } from '../backup/catalog.js';
import type { Verification } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { RdbChecker } from '../redis/rdb-check.js';
import { LogicalReader, dumpFooter, type LogicalRecord } from '../redis/logical-format.js';
import type { Repository } from '../repository/repository.js';
import { verifyArchive, type ArchiveChecker } from './archive-verify.js';

function rdbChecker(): ArchiveChecker {
  const check = new RdbChecker();
  return {
    sink: check,
    judge(readError) {
      const r = check.result();
      const catalogue = r.magicOk ? { ok: true, detail: `REDIS magic, RDB version ${r.version}` } : { ok: false, detail: 'no REDIS magic: not an RDB file' };
      if (readError) return { catalogue, fullRead: { ok: false, detail: `read failed: ${errorMessage(readError)}` } };
      const fullRead =
        r.checksum === 'ok'
          ? { ok: true, detail: `CRC-64 ${r.actual} matches the trailer` }
          : r.checksum === 'disabled'
            ? { ok: true, detail: 'trailer is zero: the server runs with rdbchecksum no (not checked)' }
            : { ok: false, detail: r.checksum === 'too-short' ? 'file too short to be an RDB' : `CRC-64 ${r.actual} differs from the trailer ${r.expected}` };
      return { catalogue, fullRead, tools: { rdbChecksum: r.checksum } };
    },
  };
}

function logicalChecker(expectedKeys: number | undefined): ArchiveChecker {
  const reader = new LogicalReader();
  let records = 0;
  let badCrc = 0;
  let firstBad = '';
  const sink = new Writable({
    objectMode: true,
    write(record: LogicalRecord, _e, cb) {
      records += 1;
      if (!dumpFooter(record.payload).crcOk) {
        badCrc += 1;
        firstBad ||= record.key.toString('utf8').slice(0, 80);
      }
      cb();
    },
  });
  reader.pipe(sink);
  return {
    sink: reader,
    judge(readError) {
      const catalogue = reader.header ? { ok: true, detail: `logical archive of Redis ${reader.header.redisVersion}, databases ${reader.header.dbs.join(',') || '-'}` } : { ok: false, detail: 'no archive header' };
      if (readError) return { catalogue, fullRead: { ok: false, detail: `read failed after ${records} keys: ${errorMessage(readError)}` }, records };
      if (badCrc > 0) return { catalogue, fullRead: { ok: false, detail: `${badCrc} DUMP payloads fail their CRC-64, first: ${firstBad}` }, records };
      if (reader.endCount !== records) return { catalogue, fullRead: { ok: false, detail: `end record says ${reader.endCount} keys, read ${records}` }, records };
      if (expectedKeys !== undefined && expectedKeys !== records) return { catalogue, fullRead: { ok: false, detail: `${records} keys read, manifest says ${expectedKeys}` }, records };
      return { catalogue, fullRead: { ok: true, detail: `${records} keys, every DUMP payload's CRC-64 checked` }, records };
    },
  };
}

export async function verifyRedisBackup(entry: BackupEntry, deps: { repo: Repository; log: Log; now?: () => Date; onProgress?: ((b: number) => void) | undefined; signal?: AbortSignal | undefined }): Promise<Verification> {
  const details = entry.manifest?.details as { mode?: string; keys?: number } | undefined;
  const checker = details?.mode === 'logical' ? logicalChecker(details.keys) : rdbChecker();
  return verifyArchive(entry, checker, deps);
}

import { pipeline } from 'node:stream/promises';
import { writeRecord, type BackupEntry } from '../backup/catalog.js';
import { VerifyInterruptedError } from './errors.js';
import { VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type LevelResult, type Verification } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import { baseTarReader, type BaseTarFacts } from '../backup/base-tar.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { discard, HashingStream } from '../util/streams.js';
import { parseWalName, segmentIndex, segmentIndexOfLsn, segmentName, walKey } from '../wal/names.js';
import { checkWalObject } from '../wal/object.js';
import { walRange, type BaseDetails } from '../backup/postgres-base.js';
import { walStatus } from '../wal/status.js';
import { summarize } from './postgres-verify.js';

interface ManifestFile {
  Path: string;
  Size: number;
}

/**
 * Verification of a base backup: (1) the stored bytes' sha256; (2) the tar read to its end
 * with backup_label and PostgreSQL's backup_manifest in it, every file the manifest lists
 * present at its size; (3) every WAL segment from the backup's start to the newest
 * archived one on its timeline present, decompressing, and matching its own sha256 — the
 * chain a point-in-time recovery from this backup would replay.
 *
 * `asWritten`: level 2's reading of the tar made as the backup was written, of exactly the
 * bytes hashed then (the backup command's). Level 1 proves the stored bytes are those, so the
 * stored tar is not decoded a second time (a gigabyte's decompression: about a third of a
 * base backup's time). Where that reading failed, the stored tar is read here as without it.
 */
export async function verifyPostgresBase(entry: BackupEntry, name: string, deps: { repo: Repository; log: Log; now?: () => Date; signal?: AbortSignal | undefined }, asWritten?: Promise<BaseTarFacts>): Promise<Verification> {
  const manifest = entry.manifest!;
  const details = manifest.details as unknown as BaseDetails;
  const now = deps.now ?? (() => new Date());
  const started = now();
  const hasher = new HashingStream();
  const written = asWritten ? await asWritten.catch(() => undefined) : undefined;
  let facts: BaseTarFacts | undefined;
  let readError: unknown;
  try {
    if (written) {
      await pipeline(await deps.repo.get(manifest.payload.key), hasher, discard());
      facts = written;
    } else {
      const reader = baseTarReader(manifest.payload.streamCodec);
      try {
        await Promise.all([pipeline(await deps.repo.get(manifest.payload.key), hasher, reader.input), reader.facts]);
      } catch (error) {
        reader.kill();
        throw error;
      }
      facts = await reader.facts;
    }
  } catch (error) {
    readError = error;
  }
  const levels: LevelResult[] = [];
  const sha = hasher.digest();
  const l1 = { level: 1, name: LEVEL_NAMES[0] };
  if (hasher.bytes !== manifest.payload.bytes) levels.push({ ...l1, ok: false, detail: `size ${hasher.bytes} bytes, manifest says ${manifest.payload.bytes}` });
  else if (sha !== manifest.payload.sha256) levels.push({ ...l1, ok: false, detail: `sha256 ${sha} differs from the manifest's ${manifest.payload.sha256}` });
  else levels.push({ ...l1, ok: true, detail: `${hasher.bytes} bytes, sha256 ${sha.slice(0, 16)}…` });

  const l2 = { level: 2, name: LEVEL_NAMES[1] };
  if (written && !levels[0]!.ok) levels.push({ ...l2, ok: false, detail: 'not judged: the stored bytes are not those read as they were written (level 1)' });
  else if (readError || !facts) levels.push({ ...l2, ok: false, detail: `tar unreadable: ${errorMessage(readError)}` });
  else {
    const { sizes, texts } = facts;
    let files: ManifestFile[] = [];
    try {
      files = (JSON.parse(texts.get('backup_manifest') ?? '') as { Files: ManifestFile[] }).Files;
    } catch {
      files = [];
    }
    const wrong = files.filter((f) => sizes.get(f.Path) !== f.Size).map((f) => `${f.Path} (${sizes.has(f.Path) ? `${sizes.get(f.Path)} bytes, manifest ${f.Size}` : 'missing'})`);
    // The range the manifest records (from the server's backup history file, or from this tar
    // when the backup came from a standby) must be the one the tar's own files state.
    let own: ReturnType<typeof walRange> | undefined;
    try {
      own = walRange(texts.get('backup_label') ?? '', texts.get('backup_manifest') ?? '');
    } catch {
      own = undefined;
    }
    let level: { ok: boolean; detail: string };
    if (!texts.has('backup_label') || files.length === 0) level = { ok: false, detail: 'no backup_label or no backup_manifest in the tar' };
    else if (!own || own.startLsn !== details.startLsn || own.stopLsn !== details.stopLsn || own.timeline !== details.timeline)
      level = { ok: false, detail: `the tar's backup_label and backup_manifest state WAL ${own ? `${own.startLsn} .. ${own.stopLsn} on timeline ${own.timeline}` : '(unreadable)'}, the manifest ${details.startLsn} .. ${details.stopLsn} on timeline ${details.timeline}` };
    else if (wrong.length > 0) level = { ok: false, detail: `${wrong.length} file(s) differ from backup_manifest, first ${wrong[0]}` };
    else level = { ok: true, detail: `${files.length} files as backup_manifest lists them; WAL ${details.startLsn} .. ${details.stopLsn} on timeline ${details.timeline}` };
    const how = written ? ' (the tar read as it was written: level 1 proves the stored bytes are those)' : '';
    levels.push({ ...l2, ok: level.ok, detail: level.detail + how });
  }

  // Level 3: the WAL chain from the backup's start segment to the newest archived on its timeline.
  const l3 = { level: 3, name: LEVEL_NAMES[2] };
  const segBytes = details.segmentBytes;
  const first = segmentIndexOfLsn(details.startLsn, segBytes);
  const status = await walStatus(deps.repo, name, { now: now() });
  const tl = status.timelines.find((t) => t.timeline === details.timeline);
  const stopIndex = segmentIndex(parseWalName(details.stopSegment)!.segment!, segBytes);
  if (!tl) levels.push({ ...l3, ok: false, detail: `no WAL of timeline ${details.timeline} in the archive` });
  else {
    const last = Math.max(stopIndex, segmentIndex(parseWalName(tl.last)!.segment!, segBytes));
    const problems: string[] = [];
    let checked = 0;
    for (let i = first; i <= last; i += 1) {
      const file = segmentName(details.timeline, i, segBytes);
      const object = await deps.repo.getBytes(walKey(name, file));
      if (!object) {
        problems.push(`${file} missing`);
        if (problems.length >= 5) break;
        continue;
      }
      try {
        const header = await checkWalObject(file, object);
        // Another cluster's segment under this name: PostgreSQL would end recovery at it.
        if (details.systemId && header.systemId && header.systemId !== details.systemId) {
          problems.push(`${file} is of cluster ${header.systemId}, the base backup of cluster ${details.systemId}`);
          if (problems.length >= 5) break;
          continue;
        }
        checked += 1;
      } catch (error) {
        problems.push(errorMessage(error));
        if (problems.length >= 5) break;
      }
    }
    levels.push(problems.length > 0 ? { ...l3, ok: false, detail: `WAL after the base backup: ${problems.join('; ')}` } : { ...l3, ok: true, detail: `${checked} WAL segments from ${segmentName(details.timeline, first, segBytes)} to ${segmentName(details.timeline, last, segBytes)} present and intact` });
  }
  if (deps.signal?.aborted) throw new VerifyInterruptedError(`postgres base ${name}/${entry.id}`);
  const verification = summarize(entry, manifest, levels, started, now(), { zstd: manifest.tools.zstd ?? 'n/a' });
  await writeRecord(deps.repo, 'postgres', entry.name, entry.id, VERIFICATION, verification);
  deps.log[verification.ok ? 'info' : 'error'](`verify postgres base ${name}/${entry.id}: ${verification.ok ? 'ok' : verification.failure}`);
  return verification;
}

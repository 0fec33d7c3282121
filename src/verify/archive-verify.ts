import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeRecord, type BackupEntry } from '../backup/catalog.js';
import { VerifyInterruptedError } from './errors.js';
import { decoder } from '../backup/codec.js';
import { VERIFICATION } from '../backup/layout.js';
import { LEVEL_NAMES, type LevelResult, type Verification } from '../backup/manifest.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream } from '../util/streams.js';
import { summarize } from './postgres-verify.js';
import { wasInterrupted } from '../process/interrupted.js';

/** Reads the decoded archive to its end and judges levels 2 and 3 in its own format. */
export interface ArchiveChecker {
  sink: Writable;
  /** After the stream ended (or failed with `readError`): level 2 and level 3 results, plus counts. */
  judge(readError: unknown): { catalogue: Omit<LevelResult, 'level' | 'name'>; fullRead: Omit<LevelResult, 'level' | 'name'>; records?: number; tools?: Record<string, string> };
}

/**
 * Verification for archives whose format we read ourselves (Redis, knowledge base): one
 * pass, stored bytes hashed (level 1) while decoded into the format's checker (2, 3).
 */
export async function verifyArchive(entry: BackupEntry, checker: ArchiveChecker, deps: { repo: Repository; log: Log; now?: () => Date; onProgress?: ((b: number) => void) | undefined; signal?: AbortSignal | undefined }): Promise<Verification> {
  const manifest = entry.manifest;
  if (!manifest) throw new Error(`backup ${entry.id} has no manifest`);
  const now = deps.now ?? (() => new Date());
  const started = now();
  const hasher = new HashingStream(deps.onProgress);
  let readError: unknown;
  try {
    const source = await deps.repo.get(manifest.payload.key, deps.signal ? { signal: deps.signal } : {});
    const dec = decoder(manifest.payload.streamCodec);
    if (dec) await Promise.all([pipeline(source, hasher, dec.input), pipeline(dec.output, checker.sink), dec.done]);
    else await pipeline(source, hasher, checker.sink);
  } catch (error) {
    readError = error;
  }
  if (wasInterrupted(deps.signal, readError)) throw new VerifyInterruptedError(`${manifest.component}/${entry.name}/${entry.id}`, readError);
  const levels: LevelResult[] = [];
  const sha = hasher.digest();
  if (readError && hasher.bytes === 0) levels.push({ level: 1, name: LEVEL_NAMES[0], ok: false, detail: `payload unreadable: ${errorMessage(readError)}` });
  else if (hasher.bytes !== manifest.payload.bytes) levels.push({ level: 1, name: LEVEL_NAMES[0], ok: false, detail: `size ${hasher.bytes} bytes, manifest says ${manifest.payload.bytes}` });
  else if (sha !== manifest.payload.sha256) levels.push({ level: 1, name: LEVEL_NAMES[0], ok: false, detail: `sha256 ${sha} differs from the manifest's ${manifest.payload.sha256}` });
  else levels.push({ level: 1, name: LEVEL_NAMES[0], ok: true, detail: `${hasher.bytes} bytes, sha256 ${sha.slice(0, 16)}…` });
  const judged = checker.judge(readError);
  levels.push({ level: 2, name: LEVEL_NAMES[1], ...judged.catalogue }, { level: 3, name: LEVEL_NAMES[2], ...judged.fullRead });
  const verification = summarize(entry, manifest, levels, started, now(), { zstd: manifest.tools.zstd ?? 'n/a', ...(judged.tools ?? {}) }, undefined, judged.records);
  await writeRecord(deps.repo, manifest.component, entry.name, entry.id, VERIFICATION, verification);
  deps.log[verification.ok ? 'info' : 'error'](`verify ${manifest.component}/${entry.name}/${entry.id}: ${verification.ok ? 'ok' : verification.failure}`);
  return verification;
}

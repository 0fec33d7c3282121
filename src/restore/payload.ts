import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { BackupEntry } from '../backup/catalog.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream } from '../util/streams.js';
import { RestoreChecksumError } from './errors.js';

/**
 * Read the whole payload once and compare its sha256 and size with the manifest, writing
 * nothing. For targets a restore cannot stage and swap (a live Redis): a swapped or damaged
 * payload is refused before its first key lands, so the target stays as it was.
 */
export async function provePayload(entry: BackupEntry, repo: Repository, signal?: AbortSignal): Promise<void> {
  const manifest = entry.manifest!;
  const hasher = new HashingStream();
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(await repo.get(manifest.payload.key, signal ? { signal } : {}), hasher, discard, signal ? { signal } : {});
  const actual = hasher.digest();
  if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
}

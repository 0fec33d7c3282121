import { pipeline } from 'node:stream/promises';
import type { BackupEntry } from '../backup/catalog.js';
import { decoder } from '../backup/codec.js';
import type { Repository } from '../repository/repository.js';
import { discard, HashingStream, holdLastUntil } from '../util/streams.js';
import { RestoreChecksumError } from './errors.js';

/** Stored bytes read so far, of the payload's stored size. */
export type Progress = (bytes: number, total: number) => void;

/**
 * Read the whole payload once and compare its sha256 and size with the manifest, writing
 * nothing. For targets a restore cannot stage and swap (a live Redis): a swapped or damaged
 * payload is refused before its first key lands, so the target stays as it was.
 */
export async function provePayload(entry: BackupEntry, repo: Repository, signal?: AbortSignal, onProgress?: Progress): Promise<void> {
  const manifest = entry.manifest!;
  const hasher = new HashingStream(onProgress && ((b) => onProgress(b, manifest.payload.bytes)));
  await pipeline(await repo.get(manifest.payload.key, signal ? { signal } : {}), hasher, discard(), signal ? { signal } : {});
  const actual = hasher.digest();
  if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
}

/**
 * The payload, decoded, into `stages` (a writer, or a parser and a writer), its sha256
 * and size checked before its last bytes are released: a damaged payload never reaches
 * the end of a restore.
 */
export async function pipeCheckedPayload(entry: BackupEntry, repo: Repository, stages: (NodeJS.WritableStream | NodeJS.ReadWriteStream)[], onProgress?: Progress): Promise<void> {
  const manifest = entry.manifest!;
  const hasher = new HashingStream(onProgress && ((b) => onProgress(b, manifest.payload.bytes)));
  const gate = holdLastUntil(async () => {
    const actual = hasher.digest();
    if (actual !== manifest.payload.sha256 || hasher.bytes !== manifest.payload.bytes) throw new RestoreChecksumError(manifest.payload.sha256, actual, hasher.bytes, manifest.payload.bytes);
  });
  const source = await repo.get(manifest.payload.key);
  const dec = decoder(manifest.payload.streamCodec);
  if (dec) await Promise.all([pipeline(source, hasher, gate, dec.input), pipeline([dec.output, ...stages]), dec.done]);
  else await pipeline([source, hasher, gate, ...stages]);
}

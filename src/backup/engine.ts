import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { pipeline } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream, allInOrder, gateOn, tapInto } from '../util/streams.js';
import { encoder, codecSuffix, type CodecStage, type EncodeOptions, type ProcessOutput } from './codec.js';
import { BackupAbortedError, BackupFailedError } from './errors.js';
import { MANIFEST, RESERVATION, backupPrefix, formatBackupId, type Component } from './layout.js';
import type { Manifest, StreamCodec } from './manifest.js';
import { recordBytes, writeRecord } from './catalog.js';
import { wasInterrupted } from '../process/interrupted.js';

/** What a component-specific engine hands over: a raw stream and the processes behind it. */
export interface PayloadSource {
  stream: Readable;
  /** Settle when each producer finished; a rejection fails the backup. */
  producers: Promise<void>[];
  /** Stop every producer (on failure or abort). */
  stop(): void;
  /** `stream` is a child process's stdout, which the compressor may read directly. */
  fromProcess?: boolean;
  /** `stream` is already in the stream codec (the producer compresses, as pg_basebackup 15+ does): no compressor. */
  encoded?: boolean;
}

export interface WriteBackupOptions {
  repo: Repository;
  component: Component;
  name: string;
  /** File name of the payload before the codec suffix, e.g. `db.dump`. */
  payloadName: string;
  streamCodec: StreamCodec;
  encode?: EncodeOptions;
  log: Log;
  now?: () => Date;
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number) => void) | undefined;
  /** Upper estimate of the payload size (e.g. the database's size), for S3 part sizing. */
  sizeHint?: number | undefined;
  start(): Promise<PayloadSource> | PayloadSource;
  /** Builds the manifest once the payload is stored; called only on success. */
  describe(written: WrittenPayload): Promise<Manifest> | Manifest;
  /** The configuration the backup was taken with, secrets never included: recovery from the bucket alone reads it. */
  config?: Record<string, unknown> | undefined;
  /** A second reader of the payload's bytes, exactly those hashed and stored (with backpressure; ended after the last byte, destroyed on failure; its failure does not fail the backup). */
  tap?: Writable | undefined;
}

export interface WrittenPayload {
  id: string;
  key: string;
  bytes: number;
  sha256: string;
  startedAt: Date;
  finishedAt: Date;
}

/** What every manifest starts with: format, id, component and name, the payload as written, and when. */
export function writtenManifest(written: WrittenPayload, component: Component, name: string, payload: { streamCodec: StreamCodec; compression: string; format: string }) {
  return {
    formatVersion: 1 as const,
    id: written.id,
    component,
    name,
    payload: { key: written.key, bytes: written.bytes, sha256: written.sha256, ...payload },
    startedAt: written.startedAt.toISOString(),
    finishedAt: written.finishedAt.toISOString(),
    durationSeconds: (written.finishedAt.getTime() - written.startedAt.getTime()) / 1000,
  };
}

/**
 * The one way any component writes a backup: reserve an id, stream the payload through
 * the codec and a hasher into the repository, and only when every producer exited 0
 * and the payload is stored, write the manifest. Anything else removes what was written.
 */
export async function writeBackup(options: WriteBackupOptions): Promise<{ manifest: Manifest; written: WrittenPayload }> {
  const { repo, component, name, log } = options;
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const { id, token } = await reserveId(repo, component, name, startedAt);
  const key = `${backupPrefix(component, name, id)}${options.payloadName}${codecSuffix(options.streamCodec)}`;
  const reservation = reservationKey(component, name, id);
  log.info(`${component} backup ${name} started`, { id, key, repository: repo.url });

  if (options.signal?.aborted) throw new BackupAbortedError(component, name, String(options.signal.reason ?? 'aborted'));
  let source: PayloadSource | undefined;
  let enc: CodecStage | null = null;
  const hasher = new HashingStream(options.onProgress);
  try {
    // No I/O turn may pass between opening the source and piping it: a process's stdout
    // handed to the compressor, or a stream already flowing, would lose its first bytes.
    source = await options.start();
    // A producer that is a process hands its stdout straight to the compressor.
    enc = source.encoded ? null : encoder(options.streamCodec, options.encode, source.fromProcess ? (source.stream as ProcessOutput) : undefined);
    const producers = [...source.producers, ...(enc ? [enc.done] : [])];
    const gate = gateOn(() => allInOrder(producers));
    const swallow = () => undefined; // failures are reported through `producers` and `put`
    if (enc?.input) pipeline(source.stream, enc.input, swallow);
    const from = enc ? enc.output : source.stream;
    const body = options.tap ? pipeline(from, hasher, tapInto(options.tap), gate, swallow) : pipeline(from, hasher, gate, swallow);
    const put = await repo.put(key, body, { signal: options.signal, sizeHint: options.sizeHint });
    // The gate passed, so every producer is done; surface a late failure all the same.
    await allInOrder(producers);
    if (put.bytes !== hasher.bytes) throw new Error(`stored ${put.bytes} bytes but hashed ${hasher.bytes}`);
  } catch (error) {
    source?.stop();
    enc?.kill();
    options.tap?.destroy();
    await Promise.allSettled([...(source?.producers ?? []), ...(enc ? [enc.done] : [])]);
    await repo.delete([key, reservation]).catch(() => undefined);
    if (wasInterrupted(options.signal, error)) throw new BackupAbortedError(component, name, String(options.signal?.reason ?? 'interrupted'));
    throw new BackupFailedError(component, name, error);
  }

  const written: WrittenPayload = { id, key, bytes: hasher.bytes, sha256: hasher.digest(), startedAt, finishedAt: now() };
  let manifest: Manifest;
  try {
    manifest = await options.describe(written);
    if (options.config) manifest = { ...manifest, config: options.config };
  } catch (error) {
    // The backup could not be completed (e.g. its WAL never reached the archive): its
    // payload goes, and its reservation too while it is still ours (never another run's).
    const ours = (await repo.getBytes(reservation).catch(() => undefined))?.toString('utf8').includes(token) ?? false;
    await repo.delete(ours ? [key, reservation] : [key]).catch(() => undefined);
    throw new BackupFailedError(component, name, error);
  }
  try {
    await assertStillOurs(repo, component, name, id, token, written);
  } catch (error) {
    // Another run's reservation is its own: only our payload goes.
    await repo.delete([key]).catch(() => undefined);
    throw new BackupFailedError(component, name, error);
  }
  await writeManifest(repo, component, name, written, manifest, log);
  log.info(`${component} backup ${name} complete`, { id, bytes: written.bytes, sha256: written.sha256 });
  return { manifest, written };
}

const reservationKey = (component: Component, name: string, id: string) => `${backupPrefix(component, name, id)}${RESERVATION}`;

/**
 * The id is the start second, with a suffix when another backup already has it. Claimed
 * by creating `<id>/reservation.json` exclusively, so two runs in the same second (or a
 * run and a retry) can never write into one id.
 */
async function reserveId(repo: Repository, component: Component, name: string, at: Date): Promise<{ id: string; token: string }> {
  const base = formatBackupId(at);
  const taken = new Set((await repo.list(`${backupPrefix(component, name)}${base}`)).map((o) => o.key.split('/')[2]));
  const token = randomUUID();
  const record = JSON.stringify({ token, host: hostname(), pid: process.pid, at: at.toISOString() }) + '\n';
  for (let suffix = 0; suffix < 1000; suffix += 1) {
    const id = formatBackupId(at, suffix);
    if (taken.has(id)) continue;
    if (await repo.createExclusive(reservationKey(component, name, id), record)) return { id, token };
  }
  throw new Error(`no free backup id in second ${base}: 1000 backups started in it`);
}

/**
 * Before the manifest makes the backup count: the reservation is still ours and the payload
 * is the one this run wrote (a store that ignored the conditional write would show it here).
 */
async function assertStillOurs(repo: Repository, component: Component, name: string, id: string, token: string, written: WrittenPayload): Promise<void> {
  const reservation = (await repo.getBytes(reservationKey(component, name, id)))?.toString('utf8') ?? '';
  if (!reservation.includes(token)) throw new Error(`backup id ${id} was taken over by another run: not writing a manifest for data it may have replaced`);
  const stored = (await repo.list(backupPrefix(component, name, id))).find((o) => o.key === written.key);
  if (!stored || stored.size !== written.bytes) throw new Error(`payload ${written.key} is ${stored ? `${stored.size} bytes, expected ${written.bytes}` : 'missing'} after the upload`);
}

/**
 * The manifest is the commit point, and its write can fail with an unknown outcome (the
 * store kept it but the answer was lost). End either complete (the stored manifest is
 * ours) or not listed (manifest removed first, then the payload); never a manifest
 * without its payload.
 */
async function writeManifest(repo: Repository, component: Component, name: string, written: WrittenPayload, manifest: Manifest, log: Log): Promise<void> {
  const key = backupPrefix(component, name, written.id) + MANIFEST;
  try {
    await writeRecord(repo, component, name, written.id, MANIFEST, manifest);
    return;
  } catch (error) {
    const expected = recordBytes(manifest);
    const stored = await repo.getBytes(key).then(
      (b) => (b === undefined ? 'absent' : b.equals(Buffer.from(expected)) ? 'ours' : 'other'),
      () => 'unknown' as const,
    );
    if (stored === 'ours') {
      log.warn(`${component} backup ${name}: the manifest write reported a failure but the manifest is stored intact`, { id: written.id, error: (error as Error).message });
      return;
    }
    if (stored === 'other') {
      // Another run's manifest under our reserved id cannot happen unless the store ignored the
      // reservation: touch nothing, say so.
      throw new BackupFailedError(component, name, new Error(`the manifest write failed (${(error as Error).message}) and ${key} holds a manifest this run did not write: left as it is, with its payload`, { cause: error }));
    }
    if (stored === 'unknown') {
      const removed = await repo.delete([key]).then(() => true, () => false);
      // A manifest we could not remove may still be there: keep its payload, so the backup is
      // then complete rather than a manifest pointing at nothing.
      if (!removed) throw new BackupFailedError(component, name, new Error(`the manifest write failed (${(error as Error).message}) and ${key} could not be checked or removed: the backup may be listed; the payload is kept`, { cause: error }));
    }
    await repo.delete([written.key, reservationKey(component, name, written.id)]).catch(() => undefined);
    throw new BackupFailedError(component, name, error);
  }
}

import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Log } from '../log.js';
import type { Repository } from '../repository/repository.js';
import { HashingStream, allInOrder, gateOn } from '../util/streams.js';
import { encoder, codecSuffix, type CodecStage, type EncodeOptions, type ProcessOutput } from './codec.js';
import { BackupAbortedError, BackupFailedError } from './errors.js';
import { MANIFEST, backupPrefix, formatBackupId, type Component } from './layout.js';
import type { Manifest, StreamCodec } from './manifest.js';
import { writeRecord } from './catalog.js';

/** What a component-specific engine hands over: a raw stream and the processes behind it. */
export interface PayloadSource {
  stream: Readable;
  /** Settle when each producer finished; a rejection fails the backup. */
  producers: Promise<void>[];
  /** Stop every producer (on failure or abort). */
  stop(): void;
  /** `stream` is a child process's stdout, which the compressor may read directly. */
  fromProcess?: boolean;
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
}

export interface WrittenPayload {
  id: string;
  key: string;
  bytes: number;
  sha256: string;
  startedAt: Date;
  finishedAt: Date;
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
  const id = await reserveId(repo, component, name, startedAt);
  const key = `${backupPrefix(component, name, id)}${options.payloadName}${codecSuffix(options.streamCodec)}`;
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
    enc = encoder(options.streamCodec, options.encode, source.fromProcess ? (source.stream as ProcessOutput) : undefined);
    const producers = [...source.producers, ...(enc ? [enc.done] : [])];
    const gate = gateOn(() => allInOrder(producers));
    const swallow = () => undefined; // failures are reported through `producers` and `put`
    if (enc?.input) pipeline(source.stream, enc.input, swallow);
    const body = enc ? pipeline(enc.output, hasher, gate, swallow) : pipeline(source.stream, hasher, gate, swallow);
    const put = await repo.put(key, body, { signal: options.signal, sizeHint: options.sizeHint });
    // The gate passed, so every producer is done; surface a late failure all the same.
    await allInOrder(producers);
    if (put.bytes !== hasher.bytes) throw new Error(`stored ${put.bytes} bytes but hashed ${hasher.bytes}`);
  } catch (error) {
    source?.stop();
    enc?.kill();
    await Promise.allSettled([...(source?.producers ?? []), ...(enc ? [enc.done] : [])]);
    await repo.delete([key]).catch(() => undefined);
    if (options.signal?.aborted) throw new BackupAbortedError(component, name, String(options.signal.reason ?? 'aborted'));
    throw new BackupFailedError(component, name, error);
  }

  const written: WrittenPayload = { id, key, bytes: hasher.bytes, sha256: hasher.digest(), startedAt, finishedAt: now() };
  let manifest: Manifest;
  try {
    manifest = await options.describe(written);
    await writeRecord(repo, component, name, id, MANIFEST, manifest);
  } catch (error) {
    await repo.delete([key]).catch(() => undefined);
    throw new BackupFailedError(component, name, error);
  }
  log.info(`${component} backup ${name} complete`, { id, bytes: written.bytes, sha256: written.sha256 });
  return { manifest, written };
}

/** The id is the start second; a suffix when another backup already started in it. */
async function reserveId(repo: Repository, component: Component, name: string, at: Date): Promise<string> {
  const base = formatBackupId(at);
  const existing = await repo.list(`${backupPrefix(component, name)}${base}`);
  if (existing.length === 0) return base;
  let suffix = 1;
  const taken = new Set(existing.map((o) => o.key.split('/')[2]));
  while (taken.has(formatBackupId(at, suffix))) suffix += 1;
  return formatBackupId(at, suffix);
}

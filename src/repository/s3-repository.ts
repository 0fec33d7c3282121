import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { ObjectNotFoundError, RepositoryError, RepositoryWriteError } from './errors.js';
import type { ObjectInfo, PutOptions, PutResult, Repository } from './repository.js';
import { S3_TIMEOUT_DEFAULTS } from '../config/defaults.js';

const MIB = 1024 * 1024;
/** How long cleanup of a failed upload may take: SIGTERM must end the job within the task's stop timeout. */
const ABORT_DEADLINE_MS = 5_000;
/** S3 allows 10,000 parts; aim below that so the size hint may be a little low. */
const MAX_PARTS_TARGET = 9_000;

/** The configured part size, or larger when the expected object would need too many parts. */
export function partSizeFor(configuredMiB: number, sizeHint: number | undefined): number {
  const configured = configuredMiB * MIB;
  if (!sizeHint) return configured;
  return Math.max(configured, Math.ceil(sizeHint / MAX_PARTS_TARGET / MIB) * MIB);
}

export interface S3RepositoryOptions {
  bucket: string;
  prefix: string;
  kmsKeyId?: string | undefined;
  partSizeMiB: number;
  queueSize: number;
  timeouts?: S3Timeouts | undefined;
  client?: S3Client;
}

/** Every request is bounded: a store that never answers must not hang a job. */
export interface S3Timeouts {
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxAttempts: number;
}



/**
 * The region the SDK's default chain finds (AWS_REGION, the shared config file's profile);
 * on an EC2 host without either, the instance's own region from its metadata service
 * (IMDSv2, bounded to 300 ms: archive_command pays it on every call off EC2); else `fallback`.
 */
function sdkRegionOr(fallback: string): () => Promise<string> {
  let found: Promise<string> | undefined;
  return () =>
    (found ??= (async () => {
      const probe = new S3Client({});
      try {
        return await probe.config.region();
      } catch {
        return (await instanceRegion(300)) ?? fallback;
      } finally {
        probe.destroy();
      }
    })());
}

/** IMDSv2: a session token, then placement/region; undefined off EC2 or when disabled. */
async function instanceRegion(timeoutMs: number): Promise<string | undefined> {
  if (process.env.AWS_EC2_METADATA_DISABLED === 'true') return undefined;
  const base = (process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? 'http://169.254.169.254').replace(/\/+$/, '');
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const token = await fetch(`${base}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, signal });
    if (!token.ok) return undefined;
    const res = await fetch(`${base}/latest/meta-data/placement/region`, { headers: { 'x-aws-ec2-metadata-token': await token.text() }, signal });
    const region = res.ok ? (await res.text()).trim() : '';
    return /^[a-z]{2}(-[a-z]+)+-\d$/.test(region) ? region : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A custom endpoint (s3rver, MinIO, …) comes from the SDK's own AWS_ENDPOINT_URL_S3;
 * such stores want path-style addressing and cannot take the SDK's default checksums.
 */
export function createS3Client(env: Record<string, string | undefined> = process.env, timeouts: S3Timeouts = S3_TIMEOUT_DEFAULTS): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3;
  return new S3Client({
    // The environment, else the SDK's own chain (the shared config file's profile), else
    // us-east-1; and a bucket in another region is followed there (its 301 names it)
    // instead of failing: a database host's archive_command must not stop on a region.
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? sdkRegionOr('us-east-1'),
    followRegionRedirects: true,
    maxAttempts: timeouts.maxAttempts,
    // socketTimeout is an idle timeout on the socket: a stalled upload or download fails
    // after it and is retried, instead of waiting forever.
    requestHandler: { socketTimeout: timeouts.requestTimeoutMs, connectionTimeout: timeouts.connectTimeoutMs },
    ...(endpoint
      ? { endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
  });
}

export class S3Repository implements Repository {
  readonly url: string;
  private readonly client: S3Client;
  private readonly base: string;

  constructor(private readonly options: S3RepositoryOptions) {
    this.client = options.client ?? createS3Client(process.env, options.timeouts);
    this.base = options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : '';
    this.url = `s3://${options.bucket}/${this.base}`;
  }

  private fullKey(key: string): string {
    return this.base + key;
  }

  private encryption(): Pick<PutObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId'> {
    return this.options.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.options.kmsKeyId } : {};
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    let bytes = 0;
    const counted = body.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          cb(null, chunk);
        },
      }),
    );
    // An error that starts in the source feeding the body is the source's, not the bucket's.
    let sourceFailure: unknown;
    body.on('error', (error) => {
      sourceFailure ??= error;
      counted.destroy(error);
    });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: this.fullKey(key), Body: counted, ...this.encryption() },
      partSize: partSizeFor(this.options.partSizeMiB, options.sizeHint),
      queueSize: this.options.queueSize,
      // Parts of a failed upload are aborted: nothing is left that could look like a backup.
      leavePartsOnError: false,
    });
    // On a signal: fail the body (no more parts are cut from it) and abort the Upload, so
    // done() rejects at once even while a part request hangs; the multipart upload itself
    // is then aborted below, with its own deadline.
    const onAbort = () => {
      counted.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      void upload.abort();
    };
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
      return { bytes };
    } catch (error) {
      await this.abortUpload(key, upload);
      if (sourceFailure !== undefined && !options.signal?.aborted) throw sourceFailure;
      throw new RepositoryWriteError(key, error);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Idempotent: an upload already aborted (or never started) is fine. Bounded in time. */
  private async abortUpload(key: string, upload: Upload): Promise<void> {
    const internals = upload as unknown as { uploadId?: string; createMultiPartPromise?: Promise<{ UploadId?: string }> };
    // The create call may still be in flight: wait a little for its id rather than leak the upload.
    const uploadId =
      internals.uploadId ??
      (await Promise.race([internals.createMultiPartPromise?.then((r) => r.UploadId).catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ABORT_DEADLINE_MS).unref())]));
    if (!uploadId) return;
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.fullKey(key), UploadId: uploadId }), { abortSignal: AbortSignal.timeout(ABORT_DEADLINE_MS) })
      .catch(() => undefined);
  }

  async putBytes(key: string, body: Buffer | string): Promise<void> {
    try {
      await this.putSmall(key, body, false);
    } catch (error) {
      throw new RepositoryWriteError(key, error);
    }
  }

  async createExclusive(key: string, body: Buffer | string | readonly Buffer[]): Promise<boolean> {
    try {
      await this.putSmall(key, typeof body === 'string' || Buffer.isBuffer(body) ? body : Buffer.concat(body), true);
      return true;
    } catch (error) {
      // 412: the object exists; 409: a conditional write to the same key is in flight.
      const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
      if (status === 412 || status === 409) return false;
      throw new RepositoryWriteError(key, error);
    }
  }

  /** One PutObject; `exclusive`: only if the key does not exist (If-None-Match: *). */
  private async putSmall(key: string, body: Buffer | string, exclusive: boolean): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.options.bucket, Key: this.fullKey(key), Body: body, ...(exclusive ? { IfNoneMatch: '*' } : {}), ...this.encryption() }),
    );
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.fullKey(key) }),
        options.signal ? { abortSignal: options.signal } : {},
      );
      if (!(out.Body instanceof Readable)) throw new RepositoryError('REPOSITORY_READ_FAILED', `no body for ${key}`);
      return out.Body;
    } catch (error) {
      throw this.readError(key, error);
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.fullKey(key) }));
      const bytes = await out.Body?.transformToByteArray();
      return bytes ? Buffer.from(bytes) : Buffer.alloc(0);
    } catch (error) {
      const mapped = this.readError(key, error);
      if (mapped instanceof ObjectNotFoundError) return undefined;
      throw mapped;
    }
  }

  private readError(key: string, error: unknown): Error {
    if (error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)) {
      return new ObjectNotFoundError(key, error);
    }
    if (error instanceof RepositoryError) return error;
    return new RepositoryError('REPOSITORY_READ_FAILED', `reading ${key} from ${this.url}: ${(error as Error).message}`, { cause: error });
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.fullKey(prefix), ContinuationToken: token }),
        );
        for (const item of page.Contents ?? []) {
          if (!item.Key) continue;
          out.push({ key: item.Key.slice(this.base.length), size: item.Size ?? 0, lastModified: item.LastModified ?? new Date(0) });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw new RepositoryError('REPOSITORY_LIST_FAILED', `listing ${this.url}${prefix}: ${(error as Error).message}`, { cause: error });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: batch.map((k) => ({ Key: this.fullKey(k) })), Quiet: true },
        }),
      );
      if (out.Errors?.length) {
        const first = out.Errors[0];
        throw new RepositoryError('REPOSITORY_DELETE_FAILED', `deleting ${first?.Key}: ${first?.Code} ${first?.Message}`, {
          context: { errors: out.Errors },
        });
      }
    }
  }

  async cleanupIncomplete(olderThan: Date): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.options.bucket,
          Prefix: this.base || undefined,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId && upload.Initiated && upload.Initiated < olderThan) {
          await this.client.send(
            new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: upload.Key, UploadId: upload.UploadId }),
          );
          aborted += 1;
        }
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async probe(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (error) {
      throw new RepositoryError('REPOSITORY_UNREACHABLE', `bucket ${this.options.bucket} not reachable: ${(error as Error).name}`, { cause: error });
    }
  }
}

import type { Readable } from 'node:stream';
import { FileRepository } from './file-repository.js';
import type { ObjectInfo, PutOptions, PutResult, Repository } from './repository.js';
import type { S3RepositoryOptions, S3Timeouts } from './s3-repository.js';
import { parseRepositoryUrl } from './url.js';

export interface OpenRepositoryOptions {
  kmsKeyId?: string | undefined;
  partSizeMiB?: number;
  queueSize?: number;
  timeouts?: S3Timeouts | undefined;
}

export function openRepository(url: string, options: OpenRepositoryOptions = {}): Repository {
  const location = parseRepositoryUrl(url);
  if (location.kind === 'file') return new FileRepository(location.root);
  return new LazyS3Repository({
    bucket: location.bucket,
    prefix: location.prefix,
    kmsKeyId: options.kmsKeyId,
    partSizeMiB: options.partSizeMiB ?? 6,
    queueSize: options.queueSize ?? 2,
    timeouts: options.timeouts,
  });
}

/**
 * Loads the AWS SDK on first use: a third of the CLI's start-up went to importing it,
 * and file:// runs (the embedded default) never need it.
 */
class LazyS3Repository implements Repository {
  readonly url: string;
  private loaded: Promise<Repository> | undefined;

  constructor(private readonly options: S3RepositoryOptions) {
    this.url = `s3://${options.bucket}/${options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : ''}`;
  }

  private repo(): Promise<Repository> {
    this.loaded ??= import('./s3-repository.js').then((m) => new m.S3Repository(this.options));
    return this.loaded;
  }

  async put(key: string, body: Readable, options?: PutOptions): Promise<PutResult> {
    return (await this.repo()).put(key, body, options);
  }
  async putBytes(key: string, body: Buffer | string): Promise<void> {
    return (await this.repo()).putBytes(key, body);
  }
  async createExclusive(key: string, body: Buffer | string | readonly Buffer[]): Promise<boolean> {
    return (await this.repo()).createExclusive(key, body);
  }
  async get(key: string, options?: { signal?: AbortSignal }): Promise<Readable> {
    return (await this.repo()).get(key, options);
  }
  async getBytes(key: string): Promise<Buffer | undefined> {
    return (await this.repo()).getBytes(key);
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    return (await this.repo()).list(prefix);
  }
  async delete(keys: string[]): Promise<void> {
    return (await this.repo()).delete(keys);
  }
  async cleanupIncomplete(olderThan: Date): Promise<number> {
    return (await this.repo()).cleanupIncomplete(olderThan);
  }
  async probe(): Promise<void> {
    return (await this.repo()).probe();
  }
}

import { FileRepository } from './file-repository.js';
import type { Repository } from './repository.js';
import { S3Repository } from './s3-repository.js';
import { parseRepositoryUrl } from './url.js';

export interface OpenRepositoryOptions {
  kmsKeyId?: string | undefined;
  partSizeMiB?: number;
  queueSize?: number;
}

export function openRepository(url: string, options: OpenRepositoryOptions = {}): Repository {
  const location = parseRepositoryUrl(url);
  if (location.kind === 'file') return new FileRepository(location.root);
  return new S3Repository({
    bucket: location.bucket,
    prefix: location.prefix,
    kmsKeyId: options.kmsKeyId,
    partSizeMiB: options.partSizeMiB ?? 16,
    queueSize: options.queueSize ?? 2,
  });
}

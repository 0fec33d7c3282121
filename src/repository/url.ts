import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RepositoryUrlError } from './errors.js';

export type RepositoryLocation =
  | { kind: 'file'; root: string }
  | { kind: 's3'; bucket: string; prefix: string };

/** `file:///abs/path` or `s3://bucket/optional/prefix`. Relative file URLs are resolved by the config loader. */
export function parseRepositoryUrl(url: string): RepositoryLocation {
  if (url.startsWith('file://')) {
    if (!url.startsWith('file:///')) throw new RepositoryUrlError(url, 'file URLs must be absolute (file:///abs) or start with file://./');
    const root = fileURLToPath(url);
    if (root === '/') throw new RepositoryUrlError(url, 'refusing to use / as the repository');
    return { kind: 'file', root: path.normalize(root) };
  }
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const [bucket = '', ...parts] = rest.split('/');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new RepositoryUrlError(url, `"${bucket}" is not a valid bucket name`);
    const prefix = parts.filter(Boolean).join('/');
    return { kind: 's3', bucket, prefix };
  }
  throw new RepositoryUrlError(url, 'use file:///abs/path, file://./relative or s3://bucket/prefix');
}

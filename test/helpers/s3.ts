import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { makeTempDir } from './tmp.js';

/** A real S3 API (s3rver) on loopback with its own directory and bucket. */
export interface LocalS3 {
  endpoint: string;
  bucket: string;
  client: S3Client;
  /** Environment for child processes and the SDK: endpoint + static credentials. */
  env: Record<string, string>;
  keys(prefix?: string): Promise<string[]>;
  multipartUploads(): Promise<number>;
  /** s3rver's store on disk. */
  directory: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
  type: string;
  get(header: string): string;
}

/**
 * s3rver answers ListMultipartUploads and AbortMultipartUpload with NotImplemented. These
 * two handlers work on s3rver's own on-disk upload store (`<bucket>/._S3rver_uploads/<id>`),
 * so tests can see whether an upload was really aborted.
 */
function multipartExtensions(directory: string) {
  const creating = new Set<string>();
  return async (ctx: KoaContext, next: () => Promise<void>) => {
    const bucket = ctx.path.split('/')[1] ?? '';
    const uploads = path.join(directory, bucket, '._S3rver_uploads');
    // S3's conditional write (If-None-Match: *, since 2024), which s3rver ignores: 412 when
    // the key exists or another conditional write of it is in flight. Check and claim
    // happen in one turn of the event loop, so of two racing PUTs exactly one proceeds.
    if (ctx.method === 'PUT' && ctx.get('if-none-match') === '*' && !ctx.query.uploadId) {
      const parts = decodeURIComponent(ctx.path).split('/').slice(2);
      const file = path.join(directory, bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
      const id = `${bucket}/${parts.join('/')}`;
      if (creating.has(id) || existsSync(file)) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
        return;
      }
      creating.add(id);
      try {
        await next();
      } finally {
        creating.delete(id);
      }
      return;
    }
    if (ctx.method === 'DELETE' && ctx.query.uploadId) {
      await rm(path.join(uploads, path.basename(ctx.query.uploadId)), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.method === 'GET' && ctx.query.uploads !== undefined) {
      const prefix = ctx.query.prefix ?? '';
      const rows: string[] = [];
      for (const id of await readdir(uploads).catch(() => [] as string[])) {
        const key = await readFile(path.join(uploads, id, 'key'), 'utf8').catch(() => undefined);
        if (key === undefined || !key.startsWith(prefix)) continue;
        const initiated = (await stat(path.join(uploads, id))).mtime.toISOString();
        rows.push(`<Upload><Key>${key}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`);
      }
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${bucket}</Bucket><IsTruncated>false</IsTruncated>${rows.join('')}</ListMultipartUploadsResult>`;
      return;
    }
    await next();
  };
}

function createServer(directory: string, bucket: string, port: number): S3rver {
  const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  (server as unknown as { middleware: unknown[] }).middleware.unshift(multipartExtensions(directory));
  return server;
}

export async function startLocalS3(bucket = 'backups'): Promise<LocalS3> {
  const directory = await makeTempDir('ops-s3rver-');
  let server = createServer(directory, bucket, 0);
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  Object.assign(process.env, env);
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  let running = true;
  return {
    endpoint,
    bucket,
    client,
    env,
    async keys(prefix = '') {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
    },
    async multipartUploads() {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return out.Uploads?.length ?? 0;
    },
    async stop() {
      if (running) await server.close();
      running = false;
    },
    directory,
    async restart() {
      if (running) await server.close();
      server = createServer(directory, bucket, port);
      await server.run();
      running = true;
    },
  };
}

export async function removeLocalS3(s3: LocalS3): Promise<void> {
  await s3.stop();
  s3.client.destroy();
}

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/repository/s3-repository.js';
import { tempDir } from '../helpers/cli.js';

/** Runs `fn` with AWS_* variables of the process replaced (the SDK's chain reads process.env). */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

describe('the S3 client\'s region on a database host (archive_command has no AWS_REGION unless told)', () => {
  it('without AWS_REGION: the shared config file\'s region (the SDK\'s chain), else us-east-1', async () => {
    const dir = await tempDir('ops-aws-config-');
    try {
      const config = path.join(dir, 'config');
      await writeFile(config, '[default]\nregion = eu-central-1\n');
      const none = { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_PROFILE: undefined, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none') };
      assert.equal(await withEnv(none, () => createS3Client({}).config.region()), 'eu-central-1');
      // Another file: the SDK caches what it read of one. No metadata service here (a closed port).
      const empty = path.join(dir, 'config-empty');
      await writeFile(empty, '');
      assert.equal(await withEnv({ ...none, AWS_CONFIG_FILE: empty, AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9' }, () => createS3Client({}).config.region()), 'us-east-1');
      assert.equal(await withEnv(none, () => createS3Client({ AWS_REGION: 'ap-south-1' }).config.region()), 'ap-south-1', 'the environment first');
      // On EC2 with neither: the instance's region from its metadata service (IMDSv2, a stand-in here).
      let tokenAsked = false;
      const imds = createServer((req, res) => {
        if (req.method === 'PUT' && req.url === '/latest/api/token') {
          tokenAsked = true;
          res.end('tok-1');
        } else if (req.url === '/latest/meta-data/placement/region' && req.headers['x-aws-ec2-metadata-token'] === 'tok-1') res.end('ap-northeast-2');
        else res.writeHead(401).end();
      });
      await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
      try {
        const endpoint = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
        const imdsEnv = { ...none, AWS_CONFIG_FILE: empty, AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint };
        assert.equal(await withEnv(imdsEnv, () => createS3Client({}).config.region()), 'ap-northeast-2');
        assert.ok(tokenAsked, 'IMDSv2: a session token first');
        assert.equal(await withEnv({ ...imdsEnv, AWS_EC2_METADATA_DISABLED: 'true' }, () => createS3Client({}).config.region()), 'us-east-1', 'disabled: not asked');
      } finally {
        imds.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a bucket in another region than the client\'s: S3\'s 301 is followed into the bucket\'s region (a stand-in that answers as S3 does)', async () => {
    const regions: string[] = [];
    const server = createServer((req, res) => {
      const region = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/s3\//.exec(req.headers.authorization ?? '')?.[1] ?? '?';
      regions.push(region);
      if (region !== 'eu-west-1') {
        res.writeHead(301, { 'content-type': 'application/xml', 'x-amz-bucket-region': 'eu-west-1' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '5' });
      res.end('hello');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const client = createS3Client({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' });
      const got = await withEnv({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' }, () => client.send(new GetObjectCommand({ Bucket: 'ops-backups', Key: 'ops/wal/main/x.zst' })));
      assert.equal(await got.Body!.transformToString(), 'hello');
      assert.deepEqual(regions, ['us-east-1', 'eu-west-1'], 'asked in us-east-1, then signed for the bucket\'s region');
    } finally {
      server.close();
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { applyPrometheusSecret, applyTargetSecrets } from '../../lambdas/shared/runtime.js';
import { createJobContext } from '../../src/jobs/context.js';
import { postgresUrl, redisUrl } from '../../src/jobs/endpoints.js';
import { silentLog } from '../../src/log.js';
import { parseConfig } from '../../src/config/load.js';
import { withEnvPassword } from '../../src/jobs/endpoints.js';

const config = (auth: object) => parseConfig(JSON.stringify({ metrics: { prometheus: { auth } } }), '/tmp/ops.config.json', {});

/** Secrets Manager has no local equivalent: a stand-in provider records what was asked. */
function fakeSecrets(value: string): { provider: SecretsProvider; asked: string[] } {
  const asked: string[] = [];
  return { asked, provider: { get: async (name: string) => (asked.push(name), value) } as unknown as SecretsProvider };
}

describe('secrets in AWS runtimes', () => {
  it('Redis: REDISCLI_AUTH fills a URL without a password; a password in the URL wins', () => {
    assert.equal(withEnvPassword('rediss://cache.example:6379', 'p@ss word'), 'rediss://:p%40ss%20word@cache.example:6379');
    assert.equal(withEnvPassword('redis://:own@cache.example:6379', 'other'), 'redis://:own@cache.example:6379');
    assert.equal(withEnvPassword('redis://cache.example:6379', undefined), 'redis://cache.example:6379');
  });

  it('two databases and two Redis instances: each reached with its own secret, never the first one\'s (Secrets Manager mocked)', async () => {
    const cfg = parseConfig(
      JSON.stringify({
        postgres: [
          { name: 'callcenter', url: 'postgresql://ops@a.example:5432/callcenter', passwordSecretArn: 'arn:secret:callcenter' },
          { name: 'billing', url: 'postgresql://ops@b.example:5432/billing', passwordSecretArn: 'arn:secret:billing' },
        ],
        redis: [
          { name: 'sessions', url: 'redis://s.example:6379', passwordSecretArn: 'arn:secret:sessions' },
          { name: 'queue', url: 'redis://q.example:6379', passwordSecretArn: 'arn:secret:queue' },
        ],
      }),
      '/tmp/ops.config.json',
      {},
    );
    const asked: string[] = [];
    const provider = { get: async (arn: string) => (asked.push(arn), { password: `pw-of-${arn.split(':').at(-1)}` }) } as unknown as SecretsProvider;
    const env: NodeJS.ProcessEnv = {};
    await applyTargetSecrets(cfg, env, provider);
    assert.deepEqual(asked.sort(), ['arn:secret:billing', 'arn:secret:callcenter', 'arn:secret:queue', 'arn:secret:sessions']);
    const ctx = createJobContext(cfg, silentLog, { env });
    assert.equal(new URL(postgresUrl(ctx, cfg.postgres[0]!)).password, 'pw-of-callcenter');
    assert.equal(new URL(postgresUrl(ctx, cfg.postgres[1]!)).password, 'pw-of-billing');
    assert.equal(new URL(redisUrl(ctx, cfg.redis[0]!)).password, 'pw-of-sessions');
    assert.equal(new URL(redisUrl(ctx, cfg.redis[1]!)).password, 'pw-of-queue');
  });

  it('Prometheus bearer token from the stage secret into the variable the config names (Secrets Manager mocked)', async () => {
    const env: NodeJS.ProcessEnv = { OPS_PROMETHEUS_SECRET_ARN: 'arn:aws:secretsmanager:eu-central-1:1:secret:prom' };
    const { provider, asked } = fakeSecrets('t0ken');
    await applyPrometheusSecret(config({ type: 'bearer', tokenEnv: 'PROM_TOKEN' }), env, provider);
    assert.equal(env.PROM_TOKEN, 't0ken');
    assert.deepEqual(asked, ['arn:aws:secretsmanager:eu-central-1:1:secret:prom']);
  });

  it('Prometheus secret: nothing fetched for sigv4 or without a secret ARN; an empty secret is an error (Secrets Manager mocked)', async () => {
    const { provider, asked } = fakeSecrets('');
    await applyPrometheusSecret(config({ type: 'sigv4' }), { OPS_PROMETHEUS_SECRET_ARN: 'arn:x' }, provider);
    await applyPrometheusSecret(config({ type: 'basic', username: 'u', passwordEnv: 'P' }), {}, provider);
    assert.deepEqual(asked, []);
    await assert.rejects(applyPrometheusSecret(config({ type: 'basic', username: 'u', passwordEnv: 'P' }), { OPS_PROMETHEUS_SECRET_ARN: 'arn:x' }, provider), /secret arn:x is empty/);
  });
});

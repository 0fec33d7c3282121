import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { applyPrometheusSecret } from '../../lambdas/shared/runtime.js';
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

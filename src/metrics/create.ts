import type { OpsConfig } from '../config/load.js';
import type { Log } from '../log.js';
import { RecordingMetrics, type MetricsSink } from './recording-metrics.js';
import type { RemoteWriteAuth } from './prometheus/remote-write.js';

export const USER_AGENT = 'ops-automation/0.1.0';

/** Running inside AWS (Lambda or ECS), where EMF in the logs becomes CloudWatch metrics. */
export function inAws(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.AWS_LAMBDA_FUNCTION_NAME || env.ECS_CONTAINER_METADATA_URI_V4);
}

/**
 * The two sinks of DESIGN.md, each when it applies: CloudWatch EMF inside AWS (or with
 * OPS_METRICS_EMF=1), Prometheus remote write when a URL is configured. `emfOut` is
 * where EMF lines go (stderr for opsctl, whose stdout is its result).
 */
export async function createMetrics(config: OpsConfig, log: Log, env: NodeJS.ProcessEnv = process.env, emfOut: NodeJS.WritableStream = process.stdout): Promise<RecordingMetrics> {
  const sinks: MetricsSink[] = [];
  if (inAws(env) || env.OPS_METRICS_EMF === '1') {
    const { EmfSink } = await import('./emf-sink.js');
    sinks.push(new EmfSink(config.metrics.namespace, emfOut as import('node:stream').Writable));
  }
  const prom = config.metrics.prometheus;
  const url = env[prom.urlEnv] ?? prom.url;
  if (url) {
    const { RemoteWriteSink } = await import('./prometheus/remote-write.js');
    sinks.push(new RemoteWriteSink({ url, auth: await remoteWriteAuth(prom.auth, env), timeoutMs: prom.timeoutMs, userAgent: USER_AGENT, labels: { job: 'ops-automation' } }));
  }
  return new RecordingMetrics(sinks, log);
}

/** The environment variable the configured Prometheus auth reads its password or token from, if any. */
export function prometheusSecretEnv(auth: OpsConfig['metrics']['prometheus']['auth']): string | undefined {
  return auth.type === 'basic' ? auth.passwordEnv : auth.type === 'bearer' ? auth.tokenEnv : undefined;
}

async function remoteWriteAuth(auth: OpsConfig['metrics']['prometheus']['auth'], env: NodeJS.ProcessEnv): Promise<RemoteWriteAuth> {
  switch (auth.type) {
    case 'none':
      return { type: 'none' };
    case 'basic':
      return { type: 'basic', username: auth.username, password: env[auth.passwordEnv] ?? '' };
    case 'bearer':
      return { type: 'bearer', token: env[auth.tokenEnv] ?? '' };
    case 'sigv4': {
      const region = auth.region ?? env.AWS_REGION ?? 'us-east-1';
      const { sigv4Signer } = await import('./prometheus/sigv4.js');
      return { type: 'sigv4', region, sign: await sigv4Signer(region) };
    }
  }
}

import { errorMessage } from '../../errors.js';
import type { MetricsSink } from '../recording-metrics.js';
import type { Sample } from '../samples.js';
import { encodeWriteRequest, toTimeSeries } from './write-request.js';

export type RemoteWriteAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'sigv4'; region: string; sign: (request: SignableRequest) => Promise<Record<string, string>> };

export interface SignableRequest {
  url: URL;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RemoteWriteOptions {
  url: string;
  auth: RemoteWriteAuth;
  /** Total time for all attempts. */
  timeoutMs: number;
  userAgent: string;
  /** Added to every series (e.g. `job`). */
  labels?: Record<string, string>;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export class RemoteWriteError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'RemoteWriteError';
  }
}

/**
 * Prometheus remote write 1.0 done right: protobuf + snappy, the required headers,
 * retries with exponential backoff on 5xx, 429 and network errors until a deadline,
 * never on other 4xx (the receiver will not accept the same payload later either).
 */
export class RemoteWriteSink implements MetricsSink {
  readonly name = 'prometheus-remote-write';

  constructor(private readonly options: RemoteWriteOptions) {}

  async send(samples: Sample[]): Promise<void> {
    const body = encodeWriteRequest(toTimeSeries(samples, this.options.labels));
    const url = new URL(this.options.url);
    const headers: Record<string, string> = {
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
      'User-Agent': this.options.userAgent,
    };
    const auth = this.options.auth;
    if (auth.type === 'basic') headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    if (auth.type === 'bearer') headers.Authorization = `Bearer ${auth.token}`;

    const doFetch = this.options.fetch ?? fetch;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
    const deadline = Date.now() + this.options.timeoutMs;
    let lastProblem = '';
    for (let attempt = 0; ; attempt += 1) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new RemoteWriteError(`gave up after ${attempt} attempts in ${this.options.timeoutMs} ms: ${lastProblem}`);
      // SigV4 signatures carry a time: sign each attempt afresh.
      const signed = auth.type === 'sigv4' ? { ...headers, ...(await auth.sign({ url, headers, body })) } : headers;
      let retryAfterMs = 0;
      try {
        const res = await doFetch(url, { method: 'POST', headers: signed, body, signal: AbortSignal.timeout(remaining) });
        const text = await res.text().catch(() => '');
        if (res.status >= 200 && res.status < 300) return;
        lastProblem = `HTTP ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ''}`;
        if (res.status !== 429 && res.status < 500) throw new RemoteWriteError(`rejected, not retried: ${lastProblem}`, res.status);
        const retryAfter = Number(res.headers.get('retry-after'));
        if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
      } catch (error) {
        if (error instanceof RemoteWriteError) throw error;
        // Our own deadline cutting the last attempt short says nothing new: keep what the
        // receiver said before (HTTP 503 is what the operator needs to see).
        const deadlineAbort = (error as Error).name === 'TimeoutError' && lastProblem !== '';
        if (!deadlineAbort) lastProblem = errorMessage(error);
      }
      const backoff = Math.max(retryAfterMs, Math.min(2_000, 100 * 2 ** attempt) + Math.floor(Math.random() * 50));
      await sleep(Math.min(backoff, Math.max(0, deadline - Date.now())));
    }
  }
}

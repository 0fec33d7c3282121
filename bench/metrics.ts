import { Writable } from 'node:stream';
import { silentLog } from '../src/log.js';
import { EmfSink } from '../src/metrics/emf-sink.js';
import { RemoteWriteSink } from '../src/metrics/prometheus/remote-write.js';
import { RecordingMetrics } from '../src/metrics/recording-metrics.js';
import { startPrometheus } from '../test/helpers/prometheus.js';
import { fixed, table } from './lib.js';

/** One backup run's metrics (backup + verify facts), emitted as EMF and pushed to a real Prometheus. */
export async function benchMetrics(): Promise<string> {
  const prom = await startPrometheus();
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  const times: number[] = [];
  const rss: number[] = [];
  const heap: number[] = [];
  try {
    for (let i = 0; i < 30; i += 1) {
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const heap0 = process.memoryUsage().heapUsed;
      const started = process.hrtime.bigint();
      const metrics = new RecordingMetrics(
        [new EmfSink('OpsAutomationBench', discard), new RemoteWriteSink({ url: prom.writeUrl, auth: { type: 'none' }, timeoutMs: 10_000, userAgent: 'bench' })],
        silentLog,
      );
      metrics.backupSucceeded('postgres', 'callcenter', { at: new Date(), durationSeconds: 2.1, bytes: 67_000_000 });
      metrics.verifySucceeded('postgres', 'callcenter', { at: new Date(), level: 3 });
      await metrics.flush();
      if (metrics.failures > 0) throw new Error('push failed');
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      rss.push((process.memoryUsage().rss - rss0) / 1048576);
      heap.push((process.memoryUsage().heapUsed - heap0) / 1048576);
    }
  } finally {
    await prom.stop();
  }
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
  const rows = [
    ['first run (module warm-up, new connection)', fixed(times[0]!, 1), fixed(rss[0]!, 1), fixed(heap[0]!, 1)],
    ['median of the next 29', fixed(median(times.slice(1)), 1), fixed(median(rss.slice(1)), 1), fixed(median(heap.slice(1)), 1)],
    ['worst of the next 29', fixed(Math.max(...times.slice(1)), 1), fixed(Math.max(...rss.slice(1)), 1), fixed(Math.max(...heap.slice(1)), 1)],
  ];
  return [
    '### Metrics overhead of one backup run (EMF + remote write to a real Prometheus on loopback)\n',
    table(rows, ['run', 'ms', 'RSS growth MiB', 'heap growth MiB']),
    '',
    '- target: under 50 ms and under 5 MB per job run',
  ].join('\n');
}

import { Console } from 'node:console';
import type { Writable } from 'node:stream';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsSink } from './recording-metrics.js';
import type { MetricUnitName, Sample } from './samples.js';

const UNITS: Record<MetricUnitName, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  Seconds: MetricUnit.Seconds,
  Bytes: MetricUnit.Bytes,
  Count: MetricUnit.Count,
  None: MetricUnit.NoUnit,
};

/**
 * CloudWatch through the embedded metric format (Powertools Metrics): one EMF line per
 * label set, written to `out` (stdout in a Lambda; stderr for opsctl, whose stdout is
 * its result, in Fargate the awslogs driver ships both). Dimensions are exactly the
 * labels: Powertools' default `service` dimension is removed so alarms can name them.
 */
export class EmfSink implements MetricsSink {
  readonly name = 'cloudwatch-emf';
  private readonly metrics: Metrics;

  constructor(namespace: string, out: Writable = process.stdout) {
    this.metrics = new Metrics({ namespace, serviceName: 'ops-automation' });
    this.metrics.clearDefaultDimensions();
    (this.metrics as unknown as { console: Console }).console = new Console({ stdout: out, stderr: process.stderr });
  }

  async send(samples: Sample[]): Promise<void> {
    const groups = new Map<string, Sample[]>();
    for (const s of samples) {
      if (s.counterBaseline) continue;
      const key = JSON.stringify(Object.entries(s.labels).sort());
      const group = groups.get(key) ?? [];
      group.push(s);
      groups.set(key, group);
    }
    for (const group of groups.values()) {
      // Same name twice in one blob would become an array: keep the latest value only.
      const latest = new Map<string, Sample>();
      for (const s of group) latest.set(s.name, s);
      this.metrics.addDimensions(group[0]!.labels);
      for (const s of latest.values()) this.metrics.addMetric(s.name, UNITS[s.unit], s.value);
      this.metrics.publishStoredMetrics();
    }
  }
}

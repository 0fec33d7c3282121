import type { Component } from '../backup/layout.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import type { MetricsRecorder } from './recorder.js';
import { METRIC, type MetricUnitName, type Sample } from './samples.js';

/** Where samples go on flush; a sink may throw, the recorder contains it. */
export interface MetricsSink {
  readonly name: string;
  send(samples: Sample[]): Promise<void>;
}

/**
 * Turns the facts jobs report into samples, and hands them to every sink once per job.
 * A sink's failure is logged with its reason and counted, never thrown: metrics must
 * not fail the job they describe.
 */
export class RecordingMetrics implements MetricsRecorder {
  readonly samples: Sample[] = [];
  /** Sink failures since this recorder was made (also logged). */
  failures = 0;

  constructor(
    private readonly sinks: MetricsSink[],
    private readonly log: Log,
    private readonly now: () => number = Date.now,
  ) {}

  private add(name: string, value: number, labels: Record<string, string>, unit: MetricUnitName, at = this.now()): void {
    this.samples.push({ name, labels, value, timestampMs: at, unit });
  }

  /** A per-run counter: 0 then `n`, one millisecond apart (see Sample.counterBaseline). */
  private count(name: string, n: number, labels: Record<string, string>): void {
    const at = this.now();
    if (n > 0) this.samples.push({ name, labels, value: 0, timestampMs: at - 1, unit: 'Count', counterBaseline: true });
    this.add(name, n, labels, 'Count', at);
  }

  backupSucceeded(component: Component, name: string, fact: { at: Date; durationSeconds: number; bytes: number }): void {
    const labels = { component, name };
    this.add(METRIC.backupLastSuccess, fact.at.getTime() / 1000, labels, 'None');
    this.add(METRIC.backupLastSize, fact.bytes, labels, 'Bytes');
    this.add(METRIC.backupDuration, fact.durationSeconds, labels, 'Seconds');
    this.count(METRIC.backupErrors, 0, labels);
  }

  backupFailed(component: Component, name: string): void {
    this.count(METRIC.backupErrors, 1, { component, name });
  }

  verifySucceeded(component: Component, name: string, fact: { at: Date; level: number }): void {
    const labels = { component, name };
    this.add(METRIC.verifyLastSuccess, fact.at.getTime() / 1000, labels, 'None');
    this.add(METRIC.verifyLevel, fact.level, labels, 'None');
    this.count(METRIC.verifyErrors, 0, labels);
  }

  verifyFailed(component: Component, name: string): void {
    this.count(METRIC.verifyErrors, 1, { component, name });
  }

  drill(component: Component, name: string, fact: { ok: boolean; at: Date; restoreSeconds: number }): void {
    const labels = { component, name };
    if (fact.ok) {
      this.add(METRIC.drillLastSuccess, fact.at.getTime() / 1000, labels, 'None');
      this.add(METRIC.drillRestoreSeconds, fact.restoreSeconds, labels, 'Seconds');
    }
    this.count(METRIC.drillErrors, fact.ok ? 0 : 1, labels);
  }

  restore(component: Component, name: string, fact: { ok: boolean; seconds: number }): void {
    const labels = { component, name };
    if (fact.ok) this.add(METRIC.restoreSeconds, fact.seconds, labels, 'Seconds');
    this.count(METRIC.restoreErrors, fact.ok ? 0 : 1, labels);
  }

  partitionRun(
    database: string,
    fact: { ok: boolean; skipped: boolean; at: Date; created: Record<string, number>; dropped: Record<string, number>; coverage: Record<string, number> },
  ): void {
    if (fact.ok) this.add(METRIC.partitionLastSuccess, fact.at.getTime() / 1000, { database }, 'None');
    for (const [table, n] of Object.entries(fact.created)) this.count(METRIC.partitionCreated, n, { database, table });
    for (const [table, n] of Object.entries(fact.dropped)) this.count(METRIC.partitionDropped, n, { database, table });
    for (const [table, n] of Object.entries(fact.coverage)) this.add(METRIC.partitionCoverage, n, { database, table }, 'Count');
    this.count(METRIC.partitionErrors, fact.ok || fact.skipped ? 0 : 1, { database });
    this.count(METRIC.partitionSkipped, fact.skipped ? 1 : 0, { database });
  }

  gauge(name: string, value: number, labels: Record<string, string>, unit: 'Seconds' | 'Bytes' | 'Count' = 'Count'): void {
    this.add(name, value, labels, unit === 'Count' && name.endsWith('_timestamp_seconds') ? 'None' : unit);
  }

  get active(): boolean {
    return this.sinks.length > 0;
  }

  async flush(): Promise<void> {
    const batch = this.samples.splice(0);
    if (batch.length === 0) return;
    await Promise.all(
      this.sinks.map(async (sink) => {
        try {
          await sink.send(batch);
        } catch (error) {
          this.failures += 1;
          this.log.error(`metrics to ${sink.name} not sent: ${errorMessage(error)}`, { sink: sink.name, samples: batch.length, failures: this.failures });
        }
      }),
    );
  }
}

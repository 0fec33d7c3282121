import type { Component } from '../backup/layout.js';

/**
 * The facts every job reports (DESIGN.md "Observability"). Jobs call these; sinks
 * (CloudWatch EMF, Prometheus remote write) are behind `flush`, and no job knows them.
 */
export interface MetricsRecorder {
  backupSucceeded(component: Component, name: string, fact: { at: Date; durationSeconds: number; bytes: number }): void;
  backupFailed(component: Component, name: string): void;
  verifySucceeded(component: Component, name: string, fact: { at: Date; level: number }): void;
  verifyFailed(component: Component, name: string): void;
  drill(component: Component, name: string, fact: { ok: boolean; at: Date; restoreSeconds: number }): void;
  restore(component: Component, name: string, fact: { ok: boolean; seconds: number }): void;
  partitionRun(database: string, fact: { ok: boolean; skipped: boolean; at: Date; created: Record<string, number>; dropped: Record<string, number>; coverage: Record<string, number> }): void;
  gauge(name: string, value: number, labels: Record<string, string>, unit?: 'Seconds' | 'Bytes' | 'Count'): void;
  /** Send everything recorded; never throws (a metrics failure must not fail the job). */
  flush(): Promise<void>;
  /** Whether anything recorded goes anywhere: facts that cost work to gather are gathered only then. */
  readonly active: boolean;
}

/** Records nothing: for tests of unrelated behaviour and for commands that report no facts. */
export class NullMetrics implements MetricsRecorder {
  backupSucceeded(): void {}
  backupFailed(): void {}
  verifySucceeded(): void {}
  verifyFailed(): void {}
  drill(): void {}
  restore(): void {}
  partitionRun(): void {}
  gauge(): void {}
  async flush(): Promise<void> {}
  readonly active = false;
}

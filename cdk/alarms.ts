import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { OpsConfig } from '../src/config/load.js';
import { ALERTS } from '../src/metrics/alerts.js';
import { METRIC } from '../src/metrics/samples.js';
import type { Stage } from './stage-config.js';

/** Runbooks of the alarms that exist only in CloudWatch (AWS plumbing Prometheus cannot see). */
export const AWS_ONLY_RUNBOOKS = {
  ScheduledTaskFailed: 'scheduled-task-failed.md',
  ScheduleDeliveryFailed: 'scheduled-task-failed.md',
  FunctionErrors: 'scheduled-task-failed.md',
  ReplicationFailed: 'replication-failed.md',
} as const;

export interface OpsAlarmsProps {
  stage: Stage;
  ops: OpsConfig;
  namespace: string;
  topics: sns.ITopic[];
  deadLetterQueue: sqs.IQueue;
  /** The EventBridge rule that matches scheduled tasks stopping badly. */
  taskFailureRuleName: string;
  functions: Record<string, lambda.IFunction>;
  /** The backup bucket's replication rule, watched like a backup (the 3-2-1 rule's second copy). */
  replication?: { sourceBucket: string; destinationBucket: string; ruleId: string };
}

/**
 * The CloudWatch side of the alerts in src/metrics/alerts.ts: same names, same
 * thresholds (the ops config's `alerts`, whose defaults are the seeds'), same runbooks.
 * Staleness reads the age gauges the status function pushes every 15 minutes, with
 * missing data breaching, so a dead checker pages instead of going quiet.
 */
export class OpsAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, private readonly props: OpsAlarmsProps) {
    super(scope, id);
    const { ops } = props;
    const t = ops.alerts;
    const staleSeconds = { postgres: t.postgresBackupStaleHours * 3600, redis: t.redisBackupStaleHours * 3600, knowledge: t.knowledgeBackupStaleDays * 86_400 };
    const targets = [
      ...ops.postgres.map((d) => ({ component: 'postgres' as const, name: d.name, alert: 'PostgresBackupStale' })),
      ...ops.redis.map((r) => ({ component: 'redis' as const, name: r.name, alert: 'RedisBackupStale' })),
      ...ops.knowledge.map((k) => ({ component: 'knowledge' as const, name: k.name, alert: 'KnowledgeBackupStale' })),
    ];
    for (const { component, name, alert } of targets) {
      const dims = { component, name };
      this.alarm(alert, `${component}-${name}`, this.metric(METRIC.backupAge, dims, 'Maximum', 30), staleSeconds[component], cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
      this.alarm('BackupFailed', `${component}-${name}`, this.metric(METRIC.backupErrors, dims, 'Sum', 60), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      this.alarm('BackupVerifyFailed', `${component}-${name}`, this.metric(METRIC.verifyErrors, dims, 'Sum', 60), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      this.alarm('DrillFailed', `${component}-${name}`, this.metric(METRIC.drillErrors, dims, 'Sum', 60), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      // 35 days is beyond CloudWatch's 7-day window: the freshness check pushes the drill's age.
      this.alarm('DrillStale', `${component}-${name}`, this.metric(METRIC.drillAge, dims, 'Maximum', 30), t.drillStaleDays * 86_400, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
    }
    for (const db of ops.postgres.filter((d) => d.pitr.enabled)) {
      const named = { name: db.name };
      this.alarm('WalArchiveStale', db.name, this.metric(METRIC.walNewestAge, named, 'Minimum', 30), t.walArchiveStaleMinutes * 60, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
      this.alarm('WalArchiveGap', db.name, this.metric(METRIC.walMissingSegments, named, 'Maximum', 30), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      // A counter since the server's statistics reset, pushed as a gauge: any rise within the hour.
      this.alarm('WalPushFailed', db.name, this.metricMath(METRIC.walArchiveFailures, named), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      // Fed by `wal push` on the database host (EMF through the CloudWatch agent, OPS_METRICS_EMF=1): no data is no alarm.
      this.alarm('WalBacklogHigh', db.name, this.metric(METRIC.walReadyBytes, named, 'Maximum', 5), t.walBacklogMaxBytes, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING', 2);
      this.alarm(
        'WalDiskFilling',
        db.name,
        new cloudwatch.MathExpression({
          // RATE: growth per second between the last two 5-minute maxima of pg_wal's size.
          expression: `free - ${t.walDiskFillHours * 3600} * RATE(used)`,
          usingMetrics: { free: this.metric(METRIC.pgWalFsFreeBytes, named, 'Minimum', 5), used: this.metric(METRIC.pgWalBytes, named, 'Maximum', 5) },
          period: Duration.minutes(5),
          label: 'free bytes left after the fill horizon',
        }),
        0,
        cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        'NOT_BREACHING',
        3,
      );
      if (db.pitr.receive.enabled) {
        // The receiver reports every 15 s: three silent 5-minute periods page (missing data breaches).
        this.alarm('WalReceiverDown', db.name, this.metric(METRIC.walReceiveHeartbeat, named, 'SampleCount', 5), 1, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, 'BREACHING', 1);
        this.alarm('WalReceiveLag', db.name, this.metric(METRIC.walReceiveLag, named, 'Maximum', 5), t.walReceiveLagSeconds, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
        this.alarm('WalSlotRetained', db.name, this.metric(METRIC.walSlotRetainedBytes, named, 'Maximum', 5), t.walSlotRetainedMaxBytes, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      }
      this.alarm('BaseBackupStale', db.name, this.metric(METRIC.baseBackupAge, named, 'Minimum', 30), t.baseBackupStaleDays * 86_400, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
      this.alarm('DrillFailed', `postgres-${db.name}-pitr`, this.metric(METRIC.drillErrors, { component: 'postgres', name: `${db.name}-pitr` }, 'Sum', 60), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      this.alarm('DrillStale', `postgres-${db.name}-pitr`, this.metric(METRIC.drillAge, { component: 'postgres', name: `${db.name}-pitr` }, 'Maximum', 30), t.drillStaleDays * 86_400, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
    }
    for (const db of ops.postgres) {
      if (!db.partitions || db.partitions.tables.length === 0) continue;
      const database = { database: db.name };
      this.alarm('PartitionCreationStale', db.name, this.metric(METRIC.partitionAge, database, 'Maximum', 30), t.partitionCreationStaleDays * 86_400, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'BREACHING');
      this.alarm('PartitionManagementFailed', db.name, this.metric(METRIC.partitionErrors, database, 'Sum', 60), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
      for (const table of db.partitions.tables) {
        this.alarm(
          'PartitionCoverageLow',
          `${db.name}-${table.table}`,
          this.metric(METRIC.partitionCoverage, { database: db.name, table: table.table }, 'Minimum', 30),
          db.partitions.minCoverage,
          cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          'BREACHING',
        );
      }
    }
    // The checker itself: one sample every 15 minutes; three empty periods page.
    this.alarm('FreshnessCheckerDead', 'status', this.metric(METRIC.freshnessLastRun, {}, 'SampleCount', 15), 1, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, 'BREACHING', 3);

    this.alarm(
      'ScheduledTaskFailed',
      'ecs',
      new cloudwatch.Metric({ namespace: 'AWS/Events', metricName: 'TriggeredRules', dimensionsMap: { RuleName: props.taskFailureRuleName }, statistic: 'Sum', period: Duration.minutes(5) }),
      0,
      cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      'NOT_BREACHING',
    );
    this.alarm('ScheduleDeliveryFailed', 'dlq', props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
    if (props.replication) {
      const r = props.replication;
      this.alarm(
        'ReplicationFailed',
        'bucket',
        new cloudwatch.Metric({ namespace: 'AWS/S3', metricName: 'OperationsFailedReplication', dimensionsMap: { SourceBucket: r.sourceBucket, DestinationBucket: r.destinationBucket, RuleId: r.ruleId }, statistic: 'Sum', period: Duration.minutes(15) }),
        0,
        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        'NOT_BREACHING',
      );
    }
    for (const [name, fn] of Object.entries(props.functions)) {
      this.alarm('FunctionErrors', name, fn.metricErrors({ period: Duration.minutes(15), statistic: 'Sum' }), 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, 'NOT_BREACHING');
    }
  }

  private metric(metricName: string, dimensionsMap: Record<string, string>, statistic: string, periodMinutes: number): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: this.props.namespace, metricName, dimensionsMap, statistic, period: Duration.minutes(periodMinutes) });
  }

  /** How much a counter pushed as a gauge rose within the hour: its maximum minus its minimum. */
  private metricMath(metricName: string, dimensionsMap: Record<string, string>): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: 'hi - lo',
      usingMetrics: { hi: this.metric(metricName, dimensionsMap, 'Maximum', 60), lo: this.metric(metricName, dimensionsMap, 'Minimum', 60) },
      period: Duration.minutes(60),
      label: `${metricName} rise per hour`,
    });
  }

  private alarm(
    alertName: string,
    suffix: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    comparisonOperator: cloudwatch.ComparisonOperator,
    missing: 'BREACHING' | 'NOT_BREACHING',
    evaluationPeriods = 1,
  ): void {
    const runbook = runbookFor(alertName);
    const alert = ALERTS.find((a) => a.name === alertName);
    const alarm = new cloudwatch.Alarm(this, `${alertName}-${suffix}`, {
      alarmName: `${this.props.stage.stackName}-${alertName}-${suffix}`.replace(/[^A-Za-z0-9._-]/g, '-'),
      alarmDescription: `${alert?.description ?? awsOnlyDescription(alertName)} Runbook: ${this.props.stage.alerts.runbookBaseUrl}${runbook}`,
      metric,
      threshold,
      comparisonOperator,
      evaluationPeriods,
      datapointsToAlarm: evaluationPeriods,
      treatMissingData: missing === 'BREACHING' ? cloudwatch.TreatMissingData.BREACHING : cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const topic of this.props.topics) {
      alarm.addAlarmAction(new actions.SnsAction(topic));
      alarm.addOkAction(new actions.SnsAction(topic));
    }
    this.alarms.push(alarm);
  }
}

export function runbookFor(alertName: string): string {
  const alert = ALERTS.find((a) => a.name === alertName);
  if (alert) return alert.runbook;
  const aws = AWS_ONLY_RUNBOOKS[alertName as keyof typeof AWS_ONLY_RUNBOOKS];
  if (!aws) throw new Error(`no runbook for alarm ${alertName}`);
  return aws;
}

function awsOnlyDescription(alertName: string): string {
  switch (alertName) {
    case 'ScheduledTaskFailed':
      return 'A Fargate job failed to start or exited non-zero.';
    case 'ScheduleDeliveryFailed':
      return 'EventBridge Scheduler could not start a job after its retries; the event is in the dead-letter queue.';
    case 'ReplicationFailed':
      return 'Objects of the backup bucket failed to replicate to the second copy (S3 OperationsFailedReplication).';
    default:
      return 'A job function failed (error or timeout).';
  }
}

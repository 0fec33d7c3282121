import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { OpsConfig } from '../src/config/load.js';
import { METRIC } from '../src/metrics/samples.js';

/**
 * One page for the on-call engineer: backup age and size per component, durations,
 * verification, partition coverage, failures, and every alarm's state.
 */
export class OpsDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: { dashboardName: string; namespace: string; ops: OpsConfig; alarms: cloudwatch.IAlarm[]; statusFunction: IFunction }) {
    super(scope, id);
    const { ops, namespace } = props;
    const targets = [
      ...ops.postgres.map((d) => ({ component: 'postgres', name: d.name })),
      ...ops.redis.map((r) => ({ component: 'redis', name: r.name })),
      ...ops.knowledge.map((k) => ({ component: 'knowledge', name: k.name })),
    ];
    let seq = 0;
    const m = (metricName: string, dims: Record<string, string>, statistic: string, label: string, unitDivisor?: number) => {
      const id = `m${seq++}`;
      const metric = new cloudwatch.Metric({ namespace, metricName, dimensionsMap: dims, statistic, period: Duration.hours(1), label });
      return unitDivisor ? new cloudwatch.MathExpression({ expression: `${id} / ${unitDivisor}`, usingMetrics: { [id]: metric }, label, period: Duration.hours(1) }) : metric;
    };
    const perTarget = (metricName: string, statistic: string, divisor?: number) => targets.map((t) => m(metricName, t, statistic, `${t.component}/${t.name}`, divisor));
    const graph = (title: string, left: cloudwatch.IMetric[], leftLabel: string) => new cloudwatch.GraphWidget({ title, left, width: 12, height: 6, leftYAxis: { label: leftLabel, showUnits: false } });

    const pitr = ops.postgres.filter((d) => d.pitr.enabled);
    const coverage = ops.postgres.flatMap((d) => (d.partitions?.tables ?? []).map((t) => m(METRIC.partitionCoverage, { database: d.name, table: t.table }, 'Minimum', `${d.name}.${t.table}`)));
    const failures = [
      ...perTarget(METRIC.backupErrors, 'Sum'),
      ...targets.map((t) => m(METRIC.verifyErrors, t, 'Sum', `verify ${t.component}/${t.name}`)),
      ...ops.postgres.map((d) => m(METRIC.partitionErrors, { database: d.name }, 'Sum', `partitions ${d.name}`)),
    ];

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.days(14),
      widgets: [
        // Seed 001's status page, rendered by the status function behind the console's sign-in.
        [new cloudwatch.CustomWidget({ title: 'System status', functionArn: props.statusFunction.functionArn, width: 24, height: 10, updateOnRefresh: true, updateOnResize: false, updateOnTimeRangeChange: false })],
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 24, height: Math.min(12, 2 + Math.ceil(props.alarms.length / 4)) })],
        [graph('Newest backup age (hours)', perTarget(METRIC.backupAge, 'Maximum', 3600), 'hours'), graph('Backup size (MiB)', perTarget(METRIC.backupLastSize, 'Maximum', 1_048_576), 'MiB')],
        [graph('Backup duration (seconds)', perTarget(METRIC.backupDuration, 'Maximum'), 'seconds'), graph('Verified level (3 = full read)', perTarget(METRIC.verifyLevel, 'Minimum'), 'level')],
        [graph('Partition coverage ahead (periods)', coverage, 'periods'), graph('Failures (per hour)', failures, 'count')],
        // Point-in-time recovery, where enabled: how far behind the archive is, whether it has holes, how old the base is.
        ...(pitr.length > 0
          ? [
              [
                graph('Newest archived WAL age (minutes)', pitr.map((d) => m(METRIC.walNewestAge, { name: d.name }, 'Maximum', d.name, 60)), 'minutes'),
                graph('WAL segments missing / archive_command failures', pitr.flatMap((d) => [m(METRIC.walMissingSegments, { name: d.name }, 'Maximum', `${d.name} missing`), m(METRIC.walArchiveFailures, { name: d.name }, 'Maximum', `${d.name} failures (since stats reset)`)]), 'count'),
              ],
              [
                graph('Newest base backup age (days): the window starts there', pitr.map((d) => m(METRIC.baseBackupAge, { name: d.name }, 'Maximum', d.name, 86_400)), 'days'),
                graph('Last passed PITR drill (days ago)', pitr.map((d) => m(METRIC.drillAge, { component: 'postgres', name: `${d.name}-pitr` }, 'Maximum', d.name, 86_400)), 'days'),
              ],
            ]
          : []),
      ],
    });
  }
}

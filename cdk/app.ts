import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OpsStack } from './ops-stack.js';
import { loadStage } from './stage-config.js';

/** The example stage: synthesizes offline on a fresh clone (imported VPC, layer by ARN). */
export const EXAMPLE_STAGE = 'cdk/stages/example.json';

/**
 * The app for one stage file, with cdk-nag (AwsSolutions) as a synth-time validation:
 * any unacknowledged finding fails `cdk synth`, `cdk deploy` and the stack test alike.
 */
export function buildOpsApp(stageFile: string, options: { outdir?: string; nag?: boolean } = {}): { app: App; stack: OpsStack } {
  const loaded = loadStage(stageFile);
  const { stage } = loaded;
  // Without this flag CDK names the replication role `CDKReplicationRole` in every stack:
  // a second stage with replication in the same account would fail to create it.
  const app = new App({ ...(options.outdir ? { outdir: options.outdir } : {}), context: { '@aws-cdk/aws-s3:setUniqueReplicationRoleName': true } });
  const stack = new OpsStack(app, stage.stackName, {
    loaded,
    stackName: stage.stackName,
    env: { account: stage.account ?? process.env.CDK_DEFAULT_ACCOUNT, region: stage.region },
    description: 'ops-automation: partitions, backups, verification, restore, metrics and alarms',
  });
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}

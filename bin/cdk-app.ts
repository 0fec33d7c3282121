#!/usr/bin/env node
// The CDK app entry (cdk.json runs it through tsx). The stage file names account,
// region, network and endpoints; the ops config it points at holds schedules, tables,
// retention and thresholds: the same file opsctl reads. `-c stage=<file>` or
// OPS_STAGE picks the stage; the example stage synthesizes offline.
import { buildOpsApp, EXAMPLE_STAGE } from '../cdk/app.js';
import { StageConfigError } from '../cdk/errors.js';

const stageFile = (process.env.CDK_CONTEXT_JSON ? (JSON.parse(process.env.CDK_CONTEXT_JSON) as { stage?: string }).stage : undefined) ?? process.env.OPS_STAGE ?? EXAMPLE_STAGE;
try {
  buildOpsApp(stageFile).app.synth();
} catch (error) {
  if (error instanceof StageConfigError) {
    console.error(error.message);
    process.exit(64);
  }
  throw error;
}

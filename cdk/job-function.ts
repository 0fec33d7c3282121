import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { logGroupProps } from './secure-defaults.js';
import type { Stage } from './stage-config.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** The newest Node.js Lambda offers (design card); pinned, not NODEJS_LATEST, so a CDK upgrade never changes it silently. */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;

export interface JobFunctionProps {
  stage: Stage;
  /** Folder under lambdas/ holding handler.ts. */
  handler: 'partitions' | 'verify' | 'restore' | 'status';
  description: string;
  environment: Record<string, string>;
  memorySize: number;
  timeout: Duration;
  vpc?: { vpc: ec2.IVpc; securityGroup: ec2.ISecurityGroup; subnets: ec2.SubnetSelection } | undefined;
  layers?: lambda.ILayerVersion[];
}

/**
 * One of the thin Lambda handlers, bundled by esbuild on the synth machine (no Docker):
 * ESM, minified, the AWS SDK left to the runtime, ARM64, its own log group with the
 * stage's retention.
 */
export class JobFunction extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: JobFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', logGroupProps(props.stage, `/ops-automation/${props.stage.stackName}/${props.handler}`));
    // Its own role writing only to its own log group (instead of AWSLambdaBasicExecutionRole's logs:* on every group).
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `ops-automation ${props.handler} function` });
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }));
    if (props.vpc) role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
    this.fn = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'lambdas', props.handler, 'handler.ts'),
      handler: 'handler',
      role,
      description: props.description,
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: { NODE_OPTIONS: '--enable-source-maps', POWERTOOLS_SERVICE_NAME: `ops-${props.handler}`, ...props.environment },
      layers: props.layers,
      vpc: props.vpc?.vpc,
      vpcSubnets: props.vpc?.subnets,
      securityGroups: props.vpc ? [props.vpc.securityGroup] : undefined,
      tracing: lambda.Tracing.DISABLED,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The SDK the code was tested with is bundled: the runtime's copy is whatever version
        // AWS ships (and lacks lib-storage and credential-provider-node). pg's optional
        // native binding is never used.
        externalModules: ['pg-native'],
        mainFields: ['module', 'main'],
        // Bundled CommonJS dependencies (pg, ioredis) still call require().
        banner: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
        tsconfig: path.join(REPO_ROOT, 'tsconfig.json'),
      },
    });
  }
}

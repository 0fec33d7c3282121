import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { RemoteError } from './errors.js';

/** What `--remote` needs of a deployed stack, from its CloudFormation outputs (cdk/ops-stack.ts writes them). */
export interface DeployedStack {
  stackName: string;
  functions: { partitions: string; verify: string; restore: string; status: string };
  clusterArn: string;
  /** `backup-postgres:callcenter`, `drill:callcenter`, `prune`, `verify` … -> task definition ARN. */
  tasks: Record<string, string>;
  subnets: string[];
  securityGroups: string[];
}

export async function describeStack(stackName: string, cfn: Pick<CloudFormationClient, 'send'>): Promise<DeployedStack> {
  const { DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  let outputs: Record<string, string>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (error) {
    throw new RemoteError('STACK_NOT_FOUND', `cannot read stack ${stackName}: ${(error as Error).message} (check the name, the region (AWS_REGION) and your credentials)`, { cause: error, exitCode: 64 });
  }
  const need = (key: string) => {
    const v = outputs[key];
    if (!v) throw new RemoteError('STACK_OUTPUT_MISSING', `stack ${stackName} has no output ${key}: deploy this version of the stack`, { exitCode: 64 });
    return v;
  };
  return {
    stackName,
    functions: { partitions: need('PartitionsFunction'), verify: need('VerifyFunction'), restore: need('RestoreFunction'), status: need('StatusFunction') },
    clusterArn: need('ClusterArn'),
    tasks: JSON.parse(need('JobTaskDefinitions')) as Record<string, string>,
    subnets: need('JobSubnets').split(',').filter(Boolean),
    securityGroups: need('JobSecurityGroups').split(',').filter(Boolean),
  };
}

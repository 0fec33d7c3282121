import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { parseOrThrow } from '../shared/validate.js';
import { restoreEnvironmentSchema, restoreRequestSchema, runTaskInput, type RestoreEnvironment } from './request.js';

export interface RestoreStarted {
  taskArn: string;
  command: string[];
  logGroup: string;
  logStream: string;
}

/**
 * Starts a restore as a Fargate task and returns at once: a restore can outlast any
 * Lambda, so it never runs here. The client is injected so tests can stand in for ECS.
 */
export async function startRestore(event: unknown, requestId: string, deps: { ecs: Pick<ECSClient, 'send'>; env: RestoreEnvironment; logger?: Logger }): Promise<RestoreStarted> {
  const request = parseOrThrow(restoreRequestSchema, event, 'restore request');
  const input = runTaskInput(request, deps.env, requestId);
  const out = await deps.ecs.send(new RunTaskCommand(input));
  const failure = out.failures?.[0];
  const taskArn = out.tasks?.[0]?.taskArn;
  if (failure || !taskArn) {
    throw new Error(`ECS did not start the restore task: ${failure?.reason ?? 'no task returned'}${failure?.detail ? ` (${failure.detail})` : ''}`);
  }
  const taskId = taskArn.split('/').pop() ?? taskArn;
  const started: RestoreStarted = {
    taskArn,
    command: input.overrides?.containerOverrides?.[0]?.command ?? [],
    logGroup: deps.env.OPS_LOG_GROUP,
    logStream: `${deps.env.OPS_LOG_STREAM_PREFIX}/${deps.env.OPS_CONTAINER_NAME}/${taskId}`,
  };
  deps.logger?.info('restore task started', { ...started, request: { ...request, confirm: request.confirm ? '(given)' : undefined } });
  return started;
}

const logger = new Logger({ serviceName: 'ops-restore' });
let ecs: ECSClient | undefined;
let env: RestoreEnvironment | undefined;

export const handler = async (event: unknown, context: Context): Promise<RestoreStarted> => {
  env ??= parseOrThrow(restoreEnvironmentSchema, process.env, 'restore function environment');
  ecs ??= new ECSClient({});
  return startRestore(event, context.awsRequestId, { ecs, env, logger });
};

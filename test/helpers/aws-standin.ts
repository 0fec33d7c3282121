import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Local HTTP stand-ins for the AWS control-plane APIs opsctl calls (CloudFormation, SSM,
 * Lambda, ECS), speaking each API's own wire protocol: AWS Query + XML, JSON 1.1, REST-JSON.
 * The SDK clients in what ships build, sign and send real requests and parse real responses
 * here; an SDK-level mock would hide a bundling defect (a client that is not a constructor).
 * These APIs have no local equivalent, so the answers are canned; every request is recorded.
 */
export interface AwsRequest {
  service: 'cloudformation' | 'ssm' | 'lambda' | 'ecs' | 'unknown';
  operation: string;
  body: any;
  authorization: string | undefined;
}

export interface AwsStandin {
  url: string;
  requests: AwsRequest[];
  /** The SSM parameter store: name -> value and version. */
  parameters: Map<string, { value: string; version: number }>;
  close(): Promise<void>;
}

export interface StandinOptions {
  stackOutputs: Record<string, string>;
  /** The JSON a Lambda answers, by function name. */
  invoke: (functionName: string, payload: unknown) => { payload: unknown; functionError?: string };
  taskExitCode?: number;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text)).on('error', reject);
  });
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startAwsStandin(options: StandinOptions): Promise<AwsStandin> {
  const requests: AwsRequest[] = [];
  const parameters = new Map<string, { value: string; version: number }>();
  let describes = 0;
  const server: Server = createServer(async (req, res) => {
    const text = await readBody(req);
    const authorization = req.headers.authorization;
    const target = String(req.headers['x-amz-target'] ?? '');
    const json = (status: number, body: unknown, type = 'application/x-amz-json-1.1') => {
      res.writeHead(status, { 'content-type': type });
      res.end(JSON.stringify(body));
    };
    if (target.startsWith('AmazonSSM.')) {
      const operation = target.slice('AmazonSSM.'.length);
      const body = JSON.parse(text || '{}');
      requests.push({ service: 'ssm', operation, body, authorization });
      if (operation === 'GetParameter') {
        const p = parameters.get(body.Name);
        if (!p) return json(400, { __type: 'ParameterNotFound', message: `Parameter ${body.Name} not found.` });
        return json(200, { Parameter: { Name: body.Name, Type: 'String', Value: p.value, Version: p.version, LastModifiedDate: Date.now() / 1000 } });
      }
      if (operation === 'DescribeParameters') return json(200, { Parameters: [] });
      if (operation === 'PutParameter') {
        const version = (parameters.get(body.Name)?.version ?? 0) + 1;
        parameters.set(body.Name, { value: body.Value, version });
        return json(200, { Version: version, Tier: body.Tier ?? 'Standard' });
      }
    }
    if (target.startsWith('AmazonEC2ContainerServiceV20141113.')) {
      const operation = target.split('.')[1]!;
      const body = JSON.parse(text || '{}');
      requests.push({ service: 'ecs', operation, body, authorization });
      const taskArn = 'arn:aws:ecs:eu-central-1:111122223333:task/jobs/0123456789abcdef';
      if (operation === 'RunTask') return json(200, { tasks: [{ taskArn, lastStatus: 'PROVISIONING' }], failures: [] });
      if (operation === 'DescribeTasks') {
        describes += 1;
        const stopped = describes >= 1;
        return json(200, { tasks: [{ taskArn, lastStatus: stopped ? 'STOPPED' : 'RUNNING', stoppedReason: stopped ? 'Essential container in task exited' : undefined, containers: [{ name: 'job', exitCode: stopped ? (options.taskExitCode ?? 0) : undefined }] }], failures: [] });
      }
    }
    const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '');
    if (invoke && req.method === 'POST') {
      const functionName = decodeURIComponent(invoke[1]!);
      const payload = text ? JSON.parse(text) : null;
      requests.push({ service: 'lambda', operation: 'Invoke', body: { functionName, payload }, authorization });
      const answer = options.invoke(functionName, payload);
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST', ...(answer.functionError ? { 'x-amz-function-error': answer.functionError } : {}) });
      return res.end(JSON.stringify(answer.payload));
    }
    const form = new URLSearchParams(text);
    if (form.get('Action') === 'DescribeStacks') {
      requests.push({ service: 'cloudformation', operation: 'DescribeStacks', body: Object.fromEntries(form), authorization });
      const outputs = Object.entries(options.stackOutputs)
        .map(([k, v]) => `<member><OutputKey>${xmlEscape(k)}</OutputKey><OutputValue>${xmlEscape(v)}</OutputValue></member>`)
        .join('');
      res.writeHead(200, { 'content-type': 'text/xml' });
      return res.end(
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${xmlEscape(form.get('StackName') ?? '')}</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-11-01T00:00:00Z</CreationTime><Outputs>${outputs}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    }
    requests.push({ service: 'unknown', operation: `${req.method} ${req.url} ${target}`, body: text, authorization });
    json(400, { __type: 'UnknownOperationException', message: `the stand-in does not answer ${req.method} ${req.url} ${target}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    parameters,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The environment that points every SDK client of a child process at the stand-in. */
export function standinEnv(url: string): Record<string, string> {
  return { AWS_ENDPOINT_URL: url, AWS_REGION: 'eu-central-1', AWS_ACCESS_KEY_ID: 'AKIDSTANDIN', AWS_SECRET_ACCESS_KEY: 'standin-secret', AWS_MAX_ATTEMPTS: '1' };
}

/** One AWS API call as the SDK made it: service, operation and the command's input. */
export interface AwsCall {
  service: string;
  operation: string;
  input: Record<string, unknown>;
}

/** What an SDK v3 client offers for middleware: enough to record, structurally typed. */
type AnyClient = { middlewareStack: { add(middleware: (next: (args: any) => Promise<any>, context: any) => (args: any) => Promise<any>, options: Record<string, unknown>): void } };

/**
 * A recording middleware on a real SDK client: every command it sends is recorded (after
 * the SDK's own input handling), then sent on as usual. With `respond`, the call stops
 * there and gets that output instead: for control planes with no local equivalent (ECS,
 * Scheduler, CloudWatch, SSM, Secrets Manager), named as mocks by the tests that use it.
 */
export function recordCalls<C extends AnyClient>(client: C, calls: AwsCall[], respond?: (call: AwsCall) => Record<string, unknown> | undefined): C {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const call: AwsCall = { service: String(context.clientName ?? '').replace(/Client$/, ''), operation: String(context.commandName ?? '').replace(/Command$/, ''), input: structuredClone(stripBody(args.input as Record<string, unknown>)) };
      calls.push(call);
      const canned = respond?.(call);
      if (canned) return { output: { $metadata: {}, ...canned }, response: {} } as never;
      return next(args);
    },
    { step: 'initialize', name: 'opsRecordAwsCalls', priority: 'high' },
  );
  return client;
}

/** Bodies are streams or buffers: what matters for authorization is who, what, where. */
function stripBody(input: Record<string, unknown>): Record<string, unknown> {
  const { Body: _body, ...rest } = input;
  void _body;
  return rest;
}

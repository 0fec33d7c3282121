import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An HTTP proxy in front of a real S3 API (s3rver) that misbehaves on request, the way
 * networks and stores do: answers with an error without forwarding, forwards and then lies
 * about the outcome, stalls forever, or resets the connection. Everything else passes.
 */
export type FaultAction =
  /** Answer `status` without forwarding: the store never saw the request. */
  | { kind: 'status'; status: number }
  /** Forward (the store does the work), then answer `status`: an outcome the client cannot know. */
  | { kind: 'forward-then-status'; status: number }
  /** Read the request, never answer. */
  | { kind: 'stall' }
  /** Destroy the connection once the request arrived. */
  | { kind: 'reset' }
  /** Answer 200 with this body without forwarding: a store that returns other bytes than it holds. */
  | { kind: 'respond'; body: string };

export interface FaultRule {
  method?: string;
  /** Matched against the path with its query string, e.g. /backups/postgres/db/.../manifest.json */
  path?: RegExp;
  /** How many matching requests get the fault (default: all). */
  times?: number;
  action: FaultAction;
}

export interface SeenRequest {
  method: string;
  path: string;
  fault: FaultAction['kind'] | null;
  status: number | null;
}

export interface FaultProxy {
  endpoint: string;
  /** Environment for the SDK and child processes: the proxy as the S3 endpoint. */
  env: Record<string, string>;
  add(rule: FaultRule): void;
  clear(): void;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

const S3_ERROR = (status: number) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected by the fault proxy</Message></Error>`;

export async function startFaultProxy(upstream: string, baseEnv: Record<string, string> = {}): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: (FaultRule & { used: number })[] = [];
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();

  const forward = (req: http.IncomingMessage, onResponse: (res: http.IncomingMessage) => void, onError: (e: Error) => void) => {
    // Headers pass unchanged (Host included): the client's SigV4 signature stays valid.
    const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, onResponse);
    out.on('error', onError);
    req.pipe(out);
  };

  const server = http.createServer((req, res) => {
    const seen: SeenRequest = { method: req.method ?? '', path: req.url ?? '', fault: null, status: null };
    requests.push(seen);
    const rule = rules.find((r) => (!r.method || r.method === req.method) && (!r.path || r.path.test(req.url ?? '')) && (r.times === undefined || r.used < r.times));
    const fail = (status: number) => {
      seen.status = status;
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(S3_ERROR(status));
    };
    if (rule) {
      rule.used += 1;
      seen.fault = rule.action.kind;
      const action = rule.action;
      if (action.kind === 'status') {
        req.resume();
        req.on('end', () => fail(action.status));
        return;
      }
      if (action.kind === 'stall') {
        req.resume();
        return;
      }
      if (action.kind === 'reset') {
        req.resume();
        req.on('end', () => req.socket.destroy());
        return;
      }
      if (action.kind === 'respond') {
        req.resume();
        req.on('end', () => {
          seen.status = 200;
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(action.body) });
          res.end(action.body);
        });
        return;
      }
      forward(req, (upstreamRes) => {
        upstreamRes.resume();
        upstreamRes.on('end', () => fail(action.status));
      }, () => fail(502));
      return;
    }
    forward(
      req,
      (upstreamRes) => {
        seen.status = upstreamRes.statusCode ?? null;
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
      () => fail(502),
    );
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    env: { ...baseEnv, AWS_ENDPOINT_URL_S3: endpoint },
    add: (rule) => rules.push({ ...rule, used: 0 }),
    clear: () => void rules.splice(0),
    requests,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

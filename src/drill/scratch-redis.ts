import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../util/free-port.js';
import { toolPath } from '../process/tools.js';
import { RespConnection } from '../redis/resp-connection.js';
import { DrillSetupError } from './errors.js';

export interface ScratchRedis {
  url: string;
  address: string;
  stop(): Promise<void>;
}


/**
 * A redis-server of the drill's own on loopback, keeping nothing on disk beyond `dir`;
 * with `dbfilename` it loads that RDB file at start, as a server restored from an RDB
 * backup would. Ready once it answers PING with the file loaded.
 */
export async function startScratchRedis(dir: string, options: { dbfilename?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ScratchRedis> {
  const command = toolPath('redis-server', options.env);
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', options.dbfilename ?? 'scratch.rdb', '--protected-mode', 'yes'];
    const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-4000)));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-4000)));
    // A binary that cannot be started emits 'error' and never 'exit': either ends the wait.
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    child.once('error', (e) => (lastError = e.message));
    const url = `redis://127.0.0.1:${port}/0`;
    const deadline = Date.now() + 60_000;
    let ready = false;
    while (Date.now() < deadline && child.exitCode === null && !lastError) {
      try {
        const c = await RespConnection.open(url, { connectTimeoutMs: 1000, replyTimeoutMs: 5000 });
        try {
          const info = await c.text(['INFO', 'persistence']);
          ready = /loading:0/.test(info);
        } finally {
          c.close();
        }
        if (ready) break;
      } catch {
        // not listening yet, or still loading
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ready) {
      return {
        url,
        address: `127.0.0.1:${port}`,
        async stop() {
          if (child.exitCode === null) {
            child.kill('SIGKILL');
            await exited;
          }
        },
      };
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    lastError ||= output.trim().split('\n').slice(-3).join(' / ') || 'did not answer within 60 s';
    // A port taken between choosing and binding: try another. Anything else is final.
    if (!/Address already in use/.test(output)) break;
  }
  throw new DrillSetupError(`the drill's scratch redis-server (${command}) did not start: ${lastError}`);
}

import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { startRedis } from '../test/helpers/redis.js';
import { OPSCTL_SH, WORK, fixed, measure, table } from './lib.js';

/** One value of `bytes` random bytes, sent as a raw RESP SET (no client library copy). */
async function setBig(port: number, bytes: number): Promise<void> {
  const value = randomBytes(bytes);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n`);
      s.write(value);
      s.write('\r\n');
    });
    s.once('data', (d) => (d.toString().startsWith('+OK') ? resolve() : reject(new Error(d.toString()))));
    s.once('error', reject);
  });
}

/**
 * Issue 14's memory case: a single 200 MiB Redis value through a logical backup, verify
 * and restore. Target: peak RSS at most 2x the value over the 150 MB baseline.
 */
export async function benchRedisBigValue(): Promise<string> {
  const size = 200 << 20;
  const source = await startRedis(['--proto-max-bulk-len', '1gb']);
  const target = await startRedis(['--proto-max-bulk-len', '1gb']);
  const dir = path.join(WORK, 'redis-big-value');
  await rm(dir, { recursive: true, force: true });
  try {
    await mkdir(WORK, { recursive: true });
    await setBig(source.port, size);
    const cfg = path.join(WORK, 'redis-big-value.json');
    await writeFile(cfg, JSON.stringify({ repository: { url: `file://${dir}` }, redis: [{ name: 'big', url: source.url, mode: 'logical' }] }));
    const rows: (string | number)[][] = [];
    for (const [label, args] of [['backup', 'backup redis'], ['verify', 'verify redis'], ['restore', `restore redis latest --target ${target.url}`]] as const) {
      const m = await measure(`${OPSCTL_SH} --config ${cfg} ${args}`);
      rows.push([label, fixed(m.seconds), fixed(m.rssMiB, 0), fixed(m.rssMiB / (size / 1048576), 2)]);
    }
    const limit = 150 / 1.048576 + 2 * (size / 1048576);
    return [
      `### Redis: one ${size >> 20} MiB value (logical mode)`,
      '',
      `Command: \`npm run bench -- redis-big-value\`. Target: peak RSS <= ${fixed(limit, 0)} MiB (150 MB + 2x the value).`,
      '',
      table(rows, ['step', 'seconds', 'peak RSS MiB', 'RSS / value']),
    ].join('\n');
  } finally {
    await source.stop();
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

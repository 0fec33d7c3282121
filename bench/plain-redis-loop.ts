/**
 * The yardstick for logical mode: a plain SCAN + pipelined DUMP/PTTL loop with
 * ioredis, everything kept in memory-free counters. Run against the same server in the
 * same minute as opsctl, it calibrates for how fast this shared machine is right now.
 * Usage: node --import tsx bench/plain-redis-loop.ts <port>
 */
import { Redis } from 'ioredis';

const client = new Redis({ host: '127.0.0.1', port: Number(process.argv[2]) });
let cursor = '0';
let keys = 0;
let bytes = 0;
do {
  const [next, batch] = await client.scanBuffer(cursor, 'COUNT', 500);
  cursor = next.toString();
  const p = client.pipeline();
  for (const k of batch) {
    p.dumpBuffer(k);
    p.pttl(k);
  }
  for (const [, value] of (await p.exec()) ?? []) if (Buffer.isBuffer(value)) bytes += value.length;
  keys += batch.length;
} while (cursor !== '0');
client.disconnect();
process.stdout.write(`${keys} ${bytes}\n`);

import { benchArchiveDifferential } from './archive-differential.js';
import { benchBundles } from './bundles.js';
import { benchMetrics } from './metrics.js';
import { benchPartitions } from './partitions.js';
import { benchPartman } from './partman.js';
import { benchPitr } from './pitr.js';
import { benchPostgres } from './postgres.js';
import { benchRedis } from './redis.js';
import { benchRedisBigValue } from './redis-big-value.js';
import { benchStartup } from './startup.js';
import { benchVerify } from './verify.js';
import { benchWalPush } from './wal-push.js';
import { benchWalReceive } from './wal-receive.js';

/** `npm run bench -- [suite...]`: prints markdown for doc/performance.md. */
const suites: Record<string, () => Promise<string>> = { postgres: benchPostgres, partitions: benchPartitions, partman: benchPartman, metrics: benchMetrics, redis: benchRedis, 'redis-big-value': benchRedisBigValue, bundles: benchBundles, startup: benchStartup, verify: benchVerify, 'archive-differential': benchArchiveDifferential, pitr: benchPitr, 'wal-receive': benchWalReceive, 'wal-push': benchWalPush };
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(suites);
for (const name of wanted) {
  const suite = suites[name];
  if (!suite) {
    process.stderr.write(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}\n`);
    process.exit(64);
  }
  process.stdout.write(`${await suite()}\n\n`);
}
process.exit(0);

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PG_MAJOR, PG_SERVER_MAJORS, assertPgMajors, dockerfilePgMajor, dockerfileServerMajors } from '../../cdk/versions.js';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';

/** The runtime stage's COPY lines: what the job image holds under /app, as repository paths. */
async function imageFiles(): Promise<{ from: string; to: string }[]> {
  const text = await readFile(path.join(ROOT, 'containers/backup/Dockerfile'), 'utf8');
  const final = text.slice(text.lastIndexOf('\nFROM '));
  return [...final.matchAll(/^COPY (?:--from=build )?(.+)$/gm)].flatMap((m) => {
    const parts = m[1]!.trim().split(/\s+/);
    const dest = parts.pop()!;
    if (dest.startsWith('/') && !dest.startsWith('/app')) return []; // the entrypoint script, outside /app
    return parts.map((src) => {
      const from = src.replace(/^\/app\//, '');
      return { from, to: dest.endsWith('/') ? path.join(dest, path.basename(from)) : dest };
    });
  });
}

describe('the job image ships only what the entrypoint runs (no Docker here: its /app assembled from the Dockerfile\'s COPY lines)', () => {
  it('opsctl runs from those files alone, with no node_modules: config validate, a knowledge backup and its verification', async () => {
    const app = await tempDir('ops-image-');
    try {
      for (const { from, to } of await imageFiles()) await cp(path.join(ROOT, from), path.join(app, to), { recursive: true, filter: (f) => !f.endsWith('.map') });
      const bytes = Number(execFileSync('du', ['-sb', app], { encoding: 'utf8' }).split('\t')[0]);
      assert.ok(bytes < 10 * 1024 * 1024, `image /app holds ${bytes} bytes`);
      const kb = path.join(app, 'kb');
      await mkdir(kb);
      await writeFile(path.join(kb, 'a.md'), 'hello');
      const cfg = path.join(app, 'job.json');
      await writeFile(cfg, JSON.stringify({ repository: { url: `file://${app}/repo` }, knowledge: [{ name: 'kb', path: kb }] }));
      const run = (args: string[]) => runCli(args, { cwd: app, command: [process.execPath, path.join(app, 'bin/opsctl.js')], env: { NODE_PATH: '' } });
      assert.equal((await run(['--config', cfg, 'config', 'validate'])).code, 0);
      const b = await run(['--config', cfg, 'backup', 'knowledge']);
      assert.equal(b.code, 0, b.stderr);
      const v = await run(['--config', cfg, 'verify', 'knowledge']);
      assert.equal(v.code, 0, v.stderr + v.stdout);
      process.stdout.write(`# job image /app: ${bytes} bytes\n`);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it("a base backup's tar is read by the worker thread the image ships beside the bundle (not on the event loop, as it falls back to without it)", async () => {
    const app = await tempDir('ops-image-tar-');
    try {
      for (const { from, to } of await imageFiles()) await cp(path.join(ROOT, from), path.join(app, to), { recursive: true, filter: (f) => !f.endsWith('.map') });
      const chunks = (await readdir(path.join(app, 'dist/opsctl'))).filter((f) => f.endsWith('.js'));
      const holder = [];
      for (const f of chunks) if (/export\{[^}]*\bbaseTarReader\b/.test(await readFile(path.join(app, 'dist/opsctl', f), 'utf8'))) holder.push(f);
      assert.equal(holder.length, 1, `chunks exporting baseTarReader: ${holder.join(', ')}`);
      const src = path.join(app, 'src-tar');
      await mkdir(src);
      await writeFile(path.join(src, 'backup_label'), 'START WAL LOCATION: 0/2000028\n');
      await writeFile(path.join(src, 'big'), Buffer.alloc(5 << 20, 1));
      const payload = path.join(app, 'base.tar.zst');
      execFileSync('bash', ['-c', `tar -c -f - -C ${src} backup_label big | zstd -q -1 > ${payload}`]);
      const tmp = path.join(app, 'tmp');
      await mkdir(tmp);
      // Run from the image's files: the chunk finds its worker beside it, or reads on the event loop.
      const script = `
        import { readdirSync, readFileSync } from 'node:fs';
        const { baseTarReader } = await import(${JSON.stringify(path.join(app, 'dist/opsctl', holder[0]!))});
        const reader = baseTarReader('zstd');
        const fifos = readdirSync(process.env.TMPDIR).filter((n) => n.startsWith('ops-base-tar-')).length;
        reader.input.end(readFileSync(${JSON.stringify(payload)}));
        const facts = await reader.facts;
        console.log(JSON.stringify({ fifos, sizes: Object.fromEntries(facts.sizes), label: facts.texts.get('backup_label') }));`;
      await writeFile(path.join(app, 'read-tar.mjs'), script);
      const out = JSON.parse(execFileSync(process.execPath, [path.join(app, 'read-tar.mjs')], { cwd: app, env: { ...process.env, TMPDIR: tmp, NODE_PATH: '' }, encoding: 'utf8' })) as { fifos: number; sizes: Record<string, number>; label: string };
      assert.equal(out.fifos, 1, 'no FIFO for a worker thread: the image bundle read the tar on the event loop');
      assert.deepEqual(out.sizes, { backup_label: 30, big: 5 << 20 });
      assert.equal(out.label, 'START WAL LOCATION: 0/2000028\n');
      assert.deepEqual(await readdir(tmp), []);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it(`pg_dump in the image and pg_restore in the layer are one major (${PG_MAJOR}); synth stops when a Dockerfile disagrees`, async () => {
    assert.equal(dockerfilePgMajor(path.join(ROOT, 'containers/backup/Dockerfile')), PG_MAJOR);
    assert.equal(dockerfilePgMajor(path.join(ROOT, 'lambdas/pg-restore-layer/Dockerfile')), PG_MAJOR);
    assert.deepEqual(dockerfileServerMajors(path.join(ROOT, 'containers/backup/Dockerfile')), [...PG_SERVER_MAJORS]);
    assertPgMajors(ROOT);
    const fake = await tempDir('ops-pgmajor-');
    try {
      for (const f of ['containers/backup/Dockerfile', 'lambdas/pg-restore-layer/Dockerfile']) {
        await mkdir(path.dirname(path.join(fake, f)), { recursive: true });
        await cp(path.join(ROOT, f), path.join(fake, f));
      }
      const image = path.join(fake, 'containers/backup/Dockerfile');
      await writeFile(image, (await readFile(image, 'utf8')).replace(`ARG PG_MAJOR=${PG_MAJOR}`, `ARG PG_MAJOR=${PG_MAJOR + 1}`));
      assert.throws(() => assertPgMajors(fake), /containers\/backup\/Dockerfile: ARG PG_MAJOR=\d+ but cdk\/versions\.ts PG_MAJOR is \d+/);
      // The server majors for point-in-time restores move with the constant too.
      await cp(path.join(ROOT, 'containers/backup/Dockerfile'), image);
      await writeFile(image, (await readFile(image, 'utf8')).replace(`ARG PG_SERVER_MAJORS="${PG_SERVER_MAJORS.join(' ')}"`, 'ARG PG_SERVER_MAJORS="17"'));
      assert.throws(() => assertPgMajors(fake), /ARG PG_SERVER_MAJORS="17" but cdk\/versions\.ts PG_SERVER_MAJORS is 15 16 17/);
    } finally {
      await rm(fake, { recursive: true, force: true });
    }
  });
});

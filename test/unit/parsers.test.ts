import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { parseQualifiedName, quoteQualified } from '../../src/postgres/identifiers.js';
import { parsePgToolVersion } from '../../src/process/tools.js';
import { CopyRowCounter, copyTarget } from '../../src/verify/copy-counter.js';

describe('COPY row counter', () => {
  const script = [
    '--',
    '-- Data for Name: calls_2026_01; Type: TABLE DATA; Schema: public; Owner: postgres',
    '--',
    '',
    'COPY public.calls_2026_01 (id, started_at) FROM stdin;',
    '1\t2026-01-01',
    '2\ta value with an escaped \\n newline',
    '\\.',
    '',
    'COPY public."Mixed-Case Table" (id) FROM stdin;',
    '\\.',
    'COPY "odd schema".t (id) FROM stdin;',
    '7',
    '\\.',
    '',
  ].join('\n');

  it('counts rows per table across arbitrary chunk boundaries', async () => {
    for (const size of [1, 3, 7, 64, 1 << 16]) {
      const chunks: Buffer[] = [];
      const buf = Buffer.from(script);
      for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
      const counter = new CopyRowCounter();
      await pipeline(Readable.from(chunks), counter);
      assert.deepEqual(Object.fromEntries(counter.counts), { 'public.calls_2026_01': 2, 'public."Mixed-Case Table"': 0, '"odd schema".t': 1 }, `chunk size ${size}`);
      assert.ok(counter.balanced);
    }
  });

  it('notices an archive that ends inside a COPY block', async () => {
    const counter = new CopyRowCounter();
    await pipeline(Readable.from([Buffer.from('COPY public.t (a) FROM stdin;\n1\n2\n')]), counter);
    assert.equal(counter.balanced, false);
  });

  it('reads the target of a COPY line with quoted names', () => {
    assert.equal(copyTarget('COPY public."a b" (x, y) FROM stdin;'), 'public."a b"');
  });

  it('reads a COPY statement as the table of contents stores it (one line break at its end) as the line without it', () => {
    for (const line of ['COPY public."a b" (x, y) FROM stdin;', 'COPY "x\ny".t FROM stdin;', 'COPY s.t FROM stdin;\n', 'COPY', '', 'COPY s.t (a) FROM stdin;;']) {
      assert.equal(copyTarget(`${line}\n`), copyTarget(line), JSON.stringify(line));
    }
    assert.equal(copyTarget('COPY public.t (a) FROM stdin;\n'), 'public.t');
  });
});

describe('identifiers', () => {
  it('parses and re-quotes names as PostgreSQL prints them', () => {
    assert.deepEqual(parseQualifiedName('public.calls'), { schema: 'public', name: 'calls' });
    assert.deepEqual(parseQualifiedName('Calls'), { schema: 'public', name: 'calls' });
    assert.deepEqual(parseQualifiedName('"My Schema"."Call-Turns"""'), { schema: 'My Schema', name: 'Call-Turns"' });
    assert.equal(quoteQualified('My Schema', 'x"y'), '"My Schema"."x""y"');
    assert.throws(() => parseQualifiedName('a.b.c'), /not a table name/);
  });
});

describe('tool versions', () => {
  it('reads pg_dump --version output', () => {
    assert.deepEqual(parsePgToolVersion('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n'), { version: '15.20', major: 15 });
    assert.deepEqual(parsePgToolVersion('pg_restore (PostgreSQL) 18.1'), { version: '18.1', major: 18 });
    assert.throws(() => parsePgToolVersion('nonsense'));
  });
});

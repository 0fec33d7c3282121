import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { PreambleFilter } from '../../src/restore/older-server.js';

// The head of `pg_restore -f -` 17 (as it writes it), then data that must pass untouched.
const script = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '',
  '\\restrict abc123',
  '',
  'SET statement_timeout = 0;',
  'SET lock_timeout = 0;',
  'SET idle_in_transaction_session_timeout = 0;',
  'SET transaction_timeout = 0;',
  'SET client_encoding = \'UTF8\';',
  "SELECT pg_catalog.set_config('search_path', '', false);",
  'SET my.custom = 1;',
  '',
  'CREATE TABLE public.t (v text);',
  'COPY public.t (v) FROM stdin;',
  'SET transaction_timeout = 0;',
  'Grüße, 日本語',
  '\\.',
  '',
].join('\n');
const known = new Set(['statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'client_encoding']);

async function filtered(bytes: Buffer, chunk: number): Promise<{ out: string; dropped: string[] }> {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  const f = new PreambleFilter(known);
  const out = await text(Readable.from(parts).pipe(f));
  return { out, dropped: f.dropped };
}

describe('the preamble filter for a server older than pg_restore', () => {
  it('drops only the preamble\'s SET of a parameter the server does not know, at every chunk size (multi-byte data split anywhere)', async () => {
    const bytes = Buffer.from(script, 'utf8');
    const want = script.replace('SET transaction_timeout = 0;\nSET client_encoding', 'SET client_encoding');
    for (let chunk = 1; chunk <= bytes.length; chunk += 1) {
      const { out, dropped } = await filtered(bytes, chunk);
      assert.equal(out, want, `chunk ${chunk}`);
      assert.deepEqual(dropped, ['transaction_timeout']);
    }
  });

  it('a COPY row that reads like the dropped line stays, and a script with no preamble end passes whole', async () => {
    const { out } = await filtered(Buffer.from(script), 7);
    assert.match(out, /FROM stdin;\nSET transaction_timeout = 0;\nGrüße/);
    const bare = 'SET statement_timeout = 0;\nSET x.y = 1';
    assert.equal((await filtered(Buffer.from(bare), 3)).out, bare);
  });
});

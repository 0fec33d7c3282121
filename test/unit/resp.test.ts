import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { encodeEnd, encodeHeader, encodeRecordHead, LogicalReader, type LogicalRecord } from '../../src/redis/logical-format.js';
import { RdbPayload } from '../../src/redis/rdb-sync.js';
import { RespParser, RespProtocolError, RespReplyError, encodeCommand, encodeCommands, type RespValue } from '../../src/redis/resp.js';

function parseAll(chunks: Buffer[]): RespValue[] {
  const out: RespValue[] = [];
  const parser = new RespParser((v) => out.push(v));
  for (const c of chunks) parser.feed(c);
  return out;
}

function split(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('RESP parser', () => {
  // A SCAN reply, an EVALSHA reply with a vanished key, an error, integers and nulls.
  const stream = Buffer.from(
    '*2\r\n$4\r\n1792\r\n*3\r\n$3\r\nk:1\r\n$0\r\n\r\n$3\r\nk:3\r\n' +
      '*4\r\n$5\r\nab\r\nc\r\n:-1\r\n$-1\r\n:-2\r\n' +
      "-NOSCRIPT No matching script. Please use EVAL.\r\n" +
      ':1234567890123\r\n+OK\r\n*0\r\n*-1\r\n',
  );
  const expected: RespValue[] = [
    [Buffer.from('1792'), [Buffer.from('k:1'), Buffer.from(''), Buffer.from('k:3')]],
    [Buffer.from('ab\r\nc'), -1, null, -2],
    new RespReplyError('NOSCRIPT No matching script. Please use EVAL.'),
    1234567890123,
    Buffer.from('OK'),
    [],
    null,
  ];

  it('reads nested arrays, binary bulk strings, integers, nulls and errors across every chunk boundary', () => {
    for (let size = 1; size <= stream.length; size += 1) {
      const got = parseAll(split(stream, size));
      assert.equal(got.length, expected.length, `chunk size ${size}`);
      for (let i = 0; i < expected.length; i += 1) {
        const e = expected[i];
        if (e instanceof RespReplyError) {
          assert.ok(got[i] instanceof RespReplyError);
          assert.equal((got[i] as Error).message, e.message);
        } else assert.deepEqual(got[i], e, `chunk size ${size}, reply ${i}`);
      }
    }
  });

  it('copies a big bulk string into one buffer of its length as it arrives, never holding the chunks as well', () => {
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const wire = Buffer.concat([Buffer.from(`*2\r\n$${payload.length}\r\n`), payload, Buffer.from('\r\n:7\r\n')]);
    const out: RespValue[] = [];
    const parser = new RespParser((v) => out.push(v));
    let peak = 0;
    for (const chunk of split(wire, 65_536)) {
      parser.feed(chunk);
      peak = Math.max(peak, parser.pendingBytes);
    }
    assert.deepEqual(out, [[payload, 7]]);
    assert.ok(peak <= payload.length + 65_536, `held at most the payload and one chunk (peak ${peak})`);
    for (const size of [1000, 65_535, 65_537, 99_991, wire.length - 3, wire.length - 4]) assert.deepEqual(parseAll(split(wire, size)), [[payload, 7]], `chunk size ${size}`);
    // The CRLF after the payload split from it: skipped, not read as a reply.
    const tail = Buffer.from(`$70000\r\n${'x'.repeat(70_000)}\r\n+OK\r\n`);
    const at = tail.indexOf('\r\n+OK') + 1;
    assert.deepEqual(parseAll([tail.subarray(0, at), tail.subarray(at)]), [Buffer.from('x'.repeat(70_000)), Buffer.from('OK')]);
  });

  it('rejects bytes that are not RESP', () => {
    assert.throws(() => parseAll([Buffer.from('HTTP/1.1 400 Bad Request\r\n')]), RespProtocolError);
    assert.throws(() => parseAll([Buffer.from(':12a\r\n')]), RespProtocolError);
  });

  it('encodes a command as one array of bulk strings, binary-safe', () => {
    assert.equal(encodeCommand(['SET', Buffer.from([0xff, 0x0d, 0x0a]), 42]).toString('latin1'), '*3\r\n$3\r\nSET\r\n$3\r\n\xff\r\n\r\n$2\r\n42\r\n');
    const many = Array.from({ length: 1234 }, (_, i) => `key:${i}`);
    const parsed = parseAll([encodeCommand(many)]);
    assert.deepEqual(parsed, [many.map((k) => Buffer.from(k))], 'a RESP array parses back to the same arguments');
  });
});

describe('logical archive reader', () => {
  it('assembles a big record from many small chunks, joining them a handful of times', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const small = Buffer.from('payload');
    const archive = Buffer.concat([
      encodeHeader({ format: 'ops-redis-logical/1', createdAt: '2026-11-22T00:00:00.000Z', redisVersion: '7.0.15', dbs: [0, 3] }),
      encodeRecordHead(0, Buffer.from('big'), -1, big.length),
      big,
      encodeRecordHead(3, Buffer.from('small'), 1_800_000_000_000, small.length),
      small,
      encodeEnd(2),
    ]);
    const records: LogicalRecord[] = [];
    const reader = new LogicalReader();
    let joins = 0;
    const concat = Buffer.concat;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      joins += 1;
      return concat(list, total);
    }) as typeof Buffer.concat;
    try {
      await pipeline(Readable.from(split(archive, 4096)), reader, new Writable({ objectMode: true, write: (r: LogicalRecord, _e, cb) => (records.push(r), cb()) }));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(records.length, 2);
    assert.ok(records[0]!.payload.equals(big));
    assert.deepEqual([records[1]!.db, records[1]!.key.toString(), records[1]!.expireAtMs, records[1]!.payload.toString()], [3, 'small', 1_800_000_000_000, 'payload']);
    assert.equal(reader.endCount, 2);
    // 513 chunks: joined a handful of times, not once per chunk (which re-copies the record 512 times).
    assert.ok(joins < 10, `chunks joined ${joins} times`);
  });

  it('receives a record of 4 MiB or more into one buffer of its size, at any chunk size and split point', async () => {
    const big = randomBytes(5 * 1024 * 1024 + 17);
    const archive = Buffer.concat([
      encodeHeader({ format: 'ops-redis-logical/1', createdAt: '2026-11-22T00:00:00.000Z', redisVersion: '7.0.15', dbs: [0] }),
      encodeRecordHead(0, Buffer.from('a'), -1, 3),
      Buffer.from('one'),
      encodeRecordHead(0, Buffer.from('big'), -1, big.length),
      big,
      encodeRecordHead(0, Buffer.from('z'), -1, 3),
      Buffer.from('two'),
      encodeEnd(3),
    ]);
    for (const size of [1, 4093, 65536, 1 << 20]) {
      const records: LogicalRecord[] = [];
      // Size 1: the record head arrives byte by byte, then the rest in 64 KiB chunks.
      const chunks = size === 1 ? [archive.subarray(0, 40), ...split(archive.subarray(40, 80), 1), ...split(archive.subarray(80), 65536)] : split(archive, size);
      // A join of the big record's chunks is a second copy of it: there must be none.
      let bigJoins = 0;
      const concat = Buffer.concat;
      Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
        const out = concat(list, total);
        if (out.length >= 4 << 20) bigJoins += 1;
        return out;
      }) as typeof Buffer.concat;
      try {
        await pipeline(Readable.from(chunks), new LogicalReader(), new Writable({ objectMode: true, write: (r: LogicalRecord, _e, cb) => (records.push(r), cb()) }));
      } finally {
        Buffer.concat = concat;
      }
      assert.equal(bigJoins, 0, `chunks of ${size}: the big record was joined`);
      assert.deepEqual(records.map((r) => r.key.toString()), ['a', 'big', 'z'], `chunks of ${size}`);
      assert.ok(records[1]!.payload.equals(big), `chunks of ${size}`);
      assert.equal(records[2]!.payload.toString(), 'two');
    }
  });
});

describe('RESP command encoding by reference', () => {
  it('writes the same bytes as one buffer would, passing big arguments through uncopied', () => {
    const big = randomBytes(3 << 20);
    const commands = [['SET', 'k', 'v'], ['RESTORE', 'key', 0, big, 'REPLACE'], ['PING'], ['RESTORE', Buffer.from('k2'), 5, Buffer.from('small')]] as const;
    const parts = encodeCommands(commands);
    assert.ok(Buffer.concat(parts).equals(Buffer.concat(commands.map((c) => encodeCommand(c)))));
    assert.ok(parts.includes(big), 'the 3 MiB argument is one of the buffers written, not a copy');
  });
});

describe('RDB transfer framing', () => {
  const payload = randomBytes(1000);
  const mark = Buffer.from('a'.repeat(40));

  async function read(stream: RdbPayload, chunks: Buffer[]): Promise<{ out: Buffer; complete: boolean }> {
    const out: Buffer[] = [];
    stream.on('data', (c: Buffer) => out.push(c));
    const ended = new Promise((r) => stream.once('end', r));
    for (const c of chunks) stream.write(c);
    await ended;
    return { out: Buffer.concat(out), complete: stream.complete };
  }

  it('diskless ($EOF:<mark>): the payload without its 40-byte mark, whatever the chunk sizes', async () => {
    const wire = Buffer.concat([payload, mark]);
    for (const size of [1, 7, 39, 40, 41, 64, 999, 1000, 1039, 1040]) {
      const got = await read(new RdbPayload(mark, 0), split(wire, size));
      assert.ok(got.out.equals(payload), `chunk size ${size}`);
      assert.equal(got.complete, true);
    }
  });

  it('with a length ($<len>): exactly that many bytes, nothing of what follows', async () => {
    for (const size of [1, 13, 1000, 1500]) {
      const got = await read(new RdbPayload(null, payload.length), split(Buffer.concat([payload, Buffer.from('\n\n+extra')]), size));
      assert.ok(got.out.equals(payload), `chunk size ${size}`);
    }
  });
});

// SPDX-License-Identifier: Apache-2.0
//
// The Arrow Flight server (docs/flight.md) of a real spiced, through the official Spice.ai SDK with
// `flightOnly: true` (no HTTP fallback: every answer below came over Flight), and through a bare gRPC client
// (@grpc/grpc-js, the SDK's own transport) whose DoGet stream is decoded by apache-arrow's tableFromIPC.
// Needs SPICED (ctest sets it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { SpiceClient } from '@spiceai/spice';
import * as grpc from '@grpc/grpc-js';
import { tableFromIPC } from 'apache-arrow';

import { startSpiced } from './lib/spiced.mjs';

const CSV = 'id,name,price,seen\n' +
  '1,apple,1.5,2024-01-02 03:04:05\n' +
  '2,banana,,2024-02-03 04:05:06\n' +
  '3,,2.25,\n';

const SPICEPOD = `version: v1
kind: Spicepod
name: flight_e2e
datasets:
  - from: file:fruits.csv
    name: fruits
    acceleration:
      enabled: true
`;

const SERVICE = '/arrow.flight.protocol.FlightService/';
let rt, client, raw;

before(async () => {
  rt = await startSpiced({ spicepod: SPICEPOD, files: { 'fruits.csv': CSV } });
  client = new SpiceClient({ httpUrl: rt.url, flightUrl: rt.flightAddr, flightOnly: true });
  raw = new grpc.Client(rt.flightAddr, grpc.credentials.createInsecure());
});

after(async () => {
  raw?.close();
  // SIGTERM with Flight connections open: the server drains and spiced exits cleanly.
  if (rt) assert.deepEqual(await rt.stop(), { code: 0, signal: null });
});

// ---- a minimal protobuf reader/writer for the bare client -------------------------------------------------

function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const field = (num, bytes) => Buffer.concat([varint((num << 3) | 2), varint(bytes.length), bytes]);

// Fields of one message as { num: [values] } (varints as BigInt, length-delimited as Buffer).
function parse(buf) {
  const fields = {};
  let i = 0;
  const readVarint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const num = key >> 3, wire = key & 7;
    let val;
    if (wire === 0) val = readVarint();
    else if (wire === 2) {
      const len = Number(readVarint());
      val = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    (fields[num] ??= []).push(val);
  }
  return fields;
}

const identity = (b) => b;

function unary(method, request) {
  return new Promise((resolve, reject) =>
    raw.makeUnaryRequest(SERVICE + method, identity, identity, request, (err, res) => (err ? reject(err) : resolve(res))));
}

function serverStream(method, request) {
  return new Promise((resolve, reject) => {
    const msgs = [];
    const call = raw.makeServerStreamRequest(SERVICE + method, identity, identity, request);
    call.on('data', (m) => msgs.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(msgs));
  });
}

// FlightData messages → an IPC stream (0xFFFFFFFF, length, header padded to 8, body; then EOS).
function ipcStream(flightData) {
  const parts = [];
  for (const m of flightData) {
    const f = parse(m);
    const header = f[2][0];
    const body = f[1000]?.[0] ?? Buffer.alloc(0);
    const padded = (header.length + 7) & ~7;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(0xffffffff, 0);
    prefix.writeInt32LE(padded, 4);
    parts.push(prefix, header, Buffer.alloc(padded - header.length), body);
  }
  parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

// ---- through the SDK --------------------------------------------------------------------------------------

test('SDK: plain query returns typed values and NULLs', async () => {
  const t = await client.sql(
    'SELECT id, name, price, seen, CAST(price AS DECIMAL(10,2)) AS d, id::INTEGER * 10 AS i32 FROM fruits ORDER BY id');
  assert.equal(t.numRows, 3);
  assert.deepEqual(t.schema.fields.map((f) => `${f.name}:${f.type}`),
    ['id:Int64', 'name:Utf8', 'price:Float64', 'seen:Timestamp<MICROSECOND>', 'd:Decimal[10e+2]', 'i32:Int32']);
  assert.deepEqual(t.getChild('id').toArray(), BigInt64Array.from([1n, 2n, 3n]));
  assert.deepEqual([...t.getChild('name')], ['apple', 'banana', null]);
  assert.deepEqual([...t.getChild('price')], [1.5, null, 2.25]);
  assert.deepEqual([...t.getChild('i32')], [10, 20, 30]);
  // Timestamps (microseconds) come back as epoch milliseconds.
  assert.equal(t.getChild('seen').get(0), Date.UTC(2024, 0, 2, 3, 4, 5));
  assert.equal(t.getChild('seen').get(1), Date.UTC(2024, 1, 3, 4, 5, 6));
  assert.equal(t.getChild('seen').get(2), null);
  // Decimal128(10, 2): the unscaled value in little-endian 32-bit words.
  assert.deepEqual([...t.getChild('d').get(0)], [150, 0, 0, 0]);
  assert.equal(t.getChild('d').get(1), null);
  assert.deepEqual([...t.getChild('d').get(2)], [225, 0, 0, 0]);
});

test('SDK: every engine type arrives as the expected JS value', async () => {
  const t = await client.sql(`SELECT -5::TINYINT AS i8, -300::SMALLINT AS i16, -70000::INTEGER AS i32, -5000000000::BIGINT AS i64,
    200::UTINYINT AS u8, 60000::USMALLINT AS u16, 4000000000::UINTEGER AS u32, 18000000000000000000::UBIGINT AS u64,
    1.5::FLOAT AS f32, 2.25::DOUBLE AS f64, true AS b, 'héllo' AS s, '\\xAB\\x01'::BLOB AS bin,
    123456789.0123456789::DECIMAL(38,10) AS dec, DATE '2024-02-29' AS d, TIME '13:14:15.5' AS tm,
    TIMESTAMP '2024-01-02 03:04:05.123456' AS ts, INTERVAL 3 DAY AS iv, [1, 2, NULL]::INTEGER[] AS li,
    {'a': 1, 'b': 'x'} AS st, MAP {'k': 1} AS mp, NULL::VARCHAR AS nul`);
  const v = (name) => t.getChild(name).get(0);
  assert.deepEqual(t.schema.fields.map((f) => String(f.type)), ['Int8', 'Int16', 'Int32', 'Int64', 'Uint8', 'Uint16',
    'Uint32', 'Uint64', 'Float32', 'Float64', 'Bool', 'Utf8', 'Binary', 'Decimal[38e+10]', 'Date32<DAY>',
    'Time64<MICROSECOND>', 'Timestamp<MICROSECOND>', 'Interval<MONTH_DAY_NANO>', 'List<Int32>',
    'Struct<{a:Int32, b:Utf8}>', 'Map<{key:Utf8, value:Int32}>', 'Utf8']);
  assert.deepEqual([v('i8'), v('i16'), v('i32'), v('i64')], [-5, -300, -70000, -5000000000n]);
  assert.deepEqual([v('u8'), v('u16'), v('u32'), v('u64')], [200, 60000, 4000000000, 18000000000000000000n]);
  assert.deepEqual([v('f32'), v('f64'), v('b'), v('s')], [1.5, 2.25, true, 'héllo']);
  assert.deepEqual([...v('bin')], [0xab, 0x01]);
  assert.equal(String(v('dec')), '1234567890123456789'); // the unscaled value; the scale (10) is in the type
  assert.equal(v('d'), Date.UTC(2024, 1, 29));
  assert.equal(v('tm'), 47655500000n); // microseconds since midnight
  assert.equal(v('ts'), Date.UTC(2024, 0, 2, 3, 4, 5) + 123.456);
  assert.deepEqual([...v('iv')], [0, 3, 0, 0]); // months, days, nanoseconds (two words)
  assert.deepEqual([...v('li')], [1, 2, null]);
  assert.deepEqual(v('st').toJSON(), { a: 1, b: 'x' });
  assert.deepEqual(v('mp').toJSON(), { k: 1 });
  assert.equal(v('nul'), null);
});

test('SDK: an empty result keeps its schema', async () => {
  const t = await client.sql('SELECT id, name FROM fruits WHERE id > 100');
  assert.equal(t.numRows, 0);
  assert.deepEqual(t.schema.fields.map((f) => f.name), ['id', 'name']);
});

test('SDK: bad SQL rejects with INVALID_ARGUMENT and the engine message', async () => {
  await assert.rejects(client.sql('SELEC 1'), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.message, /syntax error at or near "SELEC"/);
    return true;
  });
});

test('SDK: unknown table rejects with NOT_FOUND and the engine message', async () => {
  await assert.rejects(client.sql('SELECT * FROM no_such_table'), (e) => {
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.match(e.message, /Table with name no_such_table does not exist/);
    return true;
  });
});

test('SDK: a 200k-row result is streamed in several messages under 4 MiB', async () => {
  // ~40 bytes a row: 8 MB in all, more than grpc-js accepts in one message.
  const q = "SELECT range AS i, range::DOUBLE / 2 AS h, 'row number ' || range || ' of the big result' AS s FROM range(200000)";
  const t = await client.sql(q);
  assert.equal(t.numRows, 200000);
  assert.ok(t.batches.length > 1);
  assert.equal(t.getChild('i').get(0), 0n);
  assert.equal(t.getChild('i').get(199999), 199999n);
  assert.equal(t.getChild('h').get(123457), 123457 * 0.5);
  assert.equal(t.getChild('s').get(199999), 'row number 199999 of the big result');
  let sum = 0n;
  for (const v of t.getChild('i')) sum += v;
  assert.equal(sum, (199999n * 200000n) / 2n);
});

test('SDK: one big batch is split so every message stays under 4 MiB', async () => {
  // A single string column of 64 KiB values: 100 rows = 6.4 MB, far more than one message may carry.
  const t = await client.sql('SELECT i, repeat(chr(65 + (i % 26)::INTEGER), 65536) AS s FROM range(100) t(i)');
  assert.equal(t.numRows, 100);
  assert.equal(t.getChild('s').get(27).length, 65536);
  assert.equal(t.getChild('s').get(27)[0], 'B');
});

test('SDK: parallel queries each get their own complete answer', async () => {
  // Calls run on their own threads and interleave on one completion queue: mix big and small answers.
  const big = (k) => client.sql(`SELECT range + ${k} AS v FROM range(100000)`);
  const small = (k) => client.sql(`SELECT ${k} AS k, count(*) AS n FROM fruits`);
  const results = await Promise.all([big(0), small(1), big(1000), small(2), big(2000), small(3), big(3000)]);
  for (const [i, t] of results.entries()) {
    if (i % 2 === 0) {
      const k = BigInt((i / 2) * 1000);
      assert.equal(t.numRows, 100000);
      assert.equal(t.getChild('v').get(0), k);
      assert.equal(t.getChild('v').get(99999), k + 99999n);
    } else {
      assert.equal(t.getChild('k').get(0), (i + 1) / 2);
      assert.equal(t.getChild('n').get(0), 3n);
    }
  }
});

// ---- through a bare gRPC client --------------------------------------------------------------------------

test('GetFlightInfo + DoGet decoded by apache-arrow', async () => {
  const sql = Buffer.from('SELECT id, name FROM fruits ORDER BY id');
  const descriptor = Buffer.concat([varint((1 << 3) | 0), varint(2), field(2, sql)]);
  const info = parse(await unary('GetFlightInfo', descriptor));
  // schema: the encapsulated IPC Schema message, readable alone by apache-arrow.
  const schema = tableFromIPC(Buffer.concat([info[1][0], Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])])).schema;
  assert.deepEqual(schema.fields.map((f) => `${f.name}:${f.type}`), ['id:Int64', 'name:Utf8']);
  assert.deepEqual(Buffer.from(info[2][0]), descriptor); // the descriptor is echoed
  assert.equal(BigInt.asIntN(64, info[4][0]), -1n);
  assert.equal(BigInt.asIntN(64, info[5][0]), -1n);
  const ticket = parse(parse(info[3][0])[1][0])[1][0];
  assert.deepEqual(Buffer.from(ticket), sql);

  const msgs = await serverStream('DoGet', field(1, ticket));
  assert.equal(parse(msgs[0])[1000], undefined); // the schema message has no body
  const t = tableFromIPC(ipcStream(msgs));
  assert.deepEqual([...t.getChild('id')], [1n, 2n, 3n]);
  assert.deepEqual([...t.getChild('name')], ['apple', 'banana', null]);
});

test('GetSchema answers the result schema without running DoGet', async () => {
  const descriptor = Buffer.concat([varint((1 << 3) | 0), varint(2), field(2, Buffer.from('SELECT name, price * 2 AS p FROM fruits'))]);
  const res = parse(await unary('GetSchema', descriptor));
  const schema = tableFromIPC(Buffer.concat([res[1][0], Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])])).schema;
  assert.deepEqual(schema.fields.map((f) => `${f.name}:${f.type}`), ['name:Utf8', 'p:Float64']);
  // A PATH descriptor names a dataset.
  const path = Buffer.concat([varint((1 << 3) | 0), varint(1), field(3, Buffer.from('fruits'))]);
  const byPath = parse(await unary('GetSchema', path));
  const table = tableFromIPC(Buffer.concat([byPath[1][0], Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])])).schema;
  assert.deepEqual(table.fields.map((f) => f.name), ['id', 'name', 'price', 'seen']);
  const missing = Buffer.concat([varint((1 << 3) | 0), varint(1), field(3, Buffer.from('no_such'))]);
  await assert.rejects(unary('GetSchema', missing), { code: grpc.status.NOT_FOUND });
});

test('Handshake answers and the RPCs not served are UNIMPLEMENTED with their name', async () => {
  const replies = await new Promise((resolve, reject) => {
    const out = [];
    const call = raw.makeBidiStreamRequest(SERVICE + 'Handshake', identity, identity);
    call.on('data', (m) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    call.write(Buffer.concat([varint(1 << 3), varint(1), field(2, Buffer.from('hello'))]));
    call.end();
  });
  assert.equal(replies.length, 1);
  assert.equal(parse(replies[0])[1][0], 1n);

  for (const m of ['PollFlightInfo', 'NoSuchMethod']) {
    await assert.rejects(unary(m, Buffer.alloc(0)), (e) => {
      assert.equal(e.code, grpc.status.UNIMPLEMENTED);
      assert.equal(e.details, `${m} is not implemented`);
      return true;
    });
  }
});

test('malformed requests are refused and the server keeps serving', async () => {
  await assert.rejects(unary('GetFlightInfo', Buffer.from([0x12, 0x7f, 0x01])), { code: grpc.status.INVALID_ARGUMENT });
  await assert.rejects(serverStream('DoGet', Buffer.from([0x0a, 0x05, 0x41])), { code: grpc.status.INVALID_ARGUMENT });
  await assert.rejects(serverStream('DoGet', Buffer.alloc(0)), { code: grpc.status.INVALID_ARGUMENT });
  const t = await client.sql('SELECT count(*) AS n FROM fruits');
  assert.equal(t.getChild('n').get(0), 3n);
});

test('a client that leaves mid-stream does not stall the server', async () => {
  const sql = Buffer.from('SELECT range AS i FROM range(5000000)');
  await new Promise((resolve) => {
    const call = raw.makeServerStreamRequest(SERVICE + 'DoGet', identity, identity, field(1, sql));
    let n = 0;
    call.on('data', () => {
      if (++n === 3) call.cancel();
    });
    call.on('error', () => resolve());
    call.on('end', () => resolve());
  });
  const t = await client.sql('SELECT 41 + 1 AS x');
  assert.equal(t.getChild('x').get(0), 42);
});

test('/v1/status shows flight Ready on its address', async () => {
  const r = await rt.get('/v1/status');
  const flight = JSON.parse(r.text).find((c) => c.name === 'flight');
  assert.deepEqual(flight, { name: 'flight', endpoint: rt.flightAddr, status: 'Ready' });
});

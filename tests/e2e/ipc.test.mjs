// SPDX-License-Identifier: Apache-2.0
//
// spicec's Arrow IPC codec (include/spice/ipc.h) against a third-party implementation, apache-arrow (npm):
// streams written by spicec (tools/ipc_tool.c over DuckDB results) are read by apache-arrow's tableFromIPC
// with the same values, and streams written by apache-arrow's tableToIPC, with every type it can build, are
// read by spicec's decoder with the same values. Values are compared in one canonical form both sides can
// produce exactly (see ipc_tool.c): hex of the stored bytes for fixed-width values, strings for utf8, nested
// arrays and objects; plus typed spot checks through apache-arrow's own accessors. Needs SPICE_BIN_DIR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as A from 'apache-arrow';

const TOOL = path.join(process.env.SPICE_BIN_DIR ?? '../../build/bin', 'ipc_tool');
const dir = mkdtempSync(path.join(tmpdir(), 'spicec-ipc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function tool(...args) {
  return execFileSync(TOOL, args, { maxBuffer: 256 << 20 }).toString();
}

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
const utf8 = new TextDecoder();

// Element i of a Vector, canonical (finds the chunk).
function vectorValue(vec, i) {
  for (const d of vec.data) {
    if (i < d.length) return value(d, i);
    i -= d.length;
  }
  throw new Error('index past the vector');
}

function span(d, i) {
  return [Number(d.valueOffsets[i]), Number(d.valueOffsets[i + 1])];
}

// Element i of an apache-arrow Data, in ipc_tool's canonical form. apache-arrow slices values and offsets
// eagerly, so only the validity bitmap needs d.offset (getValid applies it).
function value(d, i) {
  const t = d.type;
  if (t.typeId === A.Type.Null || !d.getValid(i)) return null;
  switch (t.typeId) {
    case A.Type.Dictionary: return vectorValue(d.dictionary, Number(d.values[i]));
    case A.Type.Bool: {
      const j = d.offset + i;
      return ((d.values[j >> 3] >> (j & 7)) & 1) === 1;
    }
    case A.Type.Utf8: case A.Type.LargeUtf8: {
      const [lo, hi] = span(d, i);
      return utf8.decode(d.values.subarray(lo, hi));
    }
    case A.Type.Binary: case A.Type.LargeBinary: {
      const [lo, hi] = span(d, i);
      return hex(d.values.subarray(lo, hi));
    }
    case A.Type.List: case A.Type.LargeList: {
      const [lo, hi] = span(d, i);
      const out = [];
      for (let e = lo; e < hi; e++) out.push(value(d.children[0], e));
      return out;
    }
    case A.Type.Map: {
      const [lo, hi] = span(d, i);
      const entries = d.children[0];
      const out = [];
      for (let e = lo; e < hi; e++) out.push([value(entries.children[0], e), value(entries.children[1], e)]);
      return out;
    }
    case A.Type.FixedSizeList: {
      const n = t.listSize, out = [];
      for (let e = 0; e < n; e++) out.push(value(d.children[0], i * n + e));
      return out;
    }
    case A.Type.Struct: {
      const out = {};
      t.children.forEach((f, c) => { out[f.name] = value(d.children[c], i); });
      return out;
    }
    default: {
      const w = d.values.BYTES_PER_ELEMENT * d.stride;
      return hex(new Uint8Array(d.values.buffer, d.values.byteOffset + i * w, w));
    }
  }
}

// The canonical form of a whole table, batch by batch, as ipc_tool read prints it.
function canonical(table) {
  return table.batches.map((b) => ({
    length: b.numRows,
    columns: b.schema.fields.map((_, c) => {
      const d = b.getChildAt(c).data[0];
      return Array.from({ length: b.numRows }, (_, i) => value(d, i));
    }),
  }));
}

function ourStream(name, ...args) {
  const file = path.join(dir, name);
  tool('write', file, ...args);
  return { file, bytes: readFileSync(file), ours: JSON.parse(tool('read', file)) };
}

test('apache-arrow reads the sample stream spicec writes (every engine type), value for value', () => {
  const { bytes, ours } = ourStream('sample.arrows');
  const table = A.tableFromIPC(bytes);
  assert.equal(table.numRows, 3000);
  assert.ok(table.batches.length >= 2, 'one batch per DuckDB chunk');
  assert.deepEqual(table.schema.fields.map((f) => f.name), ours.fields.map((f) => f.name));
  assert.deepEqual(canonical(table), ours.batches);

  // The same values through apache-arrow's typed accessors.
  const col = (n) => table.getChild(n);
  assert.equal(col('id').get(7), 7);
  assert.equal(col('b').get(3), true);
  assert.equal(col('b').get(4), false);
  assert.equal(col('i8').get(1), -99);
  assert.equal(col('i64').get(2), 2000000014n);
  assert.equal(col('u64').get(2999), 2999n);
  assert.equal(col('f32').get(3), 0.75);
  assert.equal(col('s').get(2), 'str 2 "q" ü');
  assert.equal(col('s').get(1), null);
  assert.deepEqual([...col('bin').get(1)], [0, 255, 49]);
  assert.equal(String(col('dec9').type), 'Decimal[9e+2]');
  assert.equal(col('d').type.unit, A.DateUnit.DAY);
  assert.equal(col('d').get(1), Date.UTC(2024, 1, 29));
  assert.equal(col('ts').type.unit, A.TimeUnit.MICROSECOND);
  assert.equal(col('ts').get(1), Date.UTC(2024, 0, 1, 12, 1));
  assert.equal(col('tstz').type.timezone, 'UTC');
  assert.equal(col('tsms').type.unit, A.TimeUnit.MILLISECOND);
  assert.equal(col('lst').get(0), null);
  assert.deepEqual([...col('lst').get(1)], [1n, null, 2n]);
  assert.deepEqual(col('st').get(1).toJSON(), { a: 1n, b: 'x1' });
  assert.equal(col('st').get(2).b, null);
  assert.deepEqual(col('m').get(5).toJSON(), { k5: 5n });
  assert.deepEqual([...col('arr').get(4)], [4, 5]);
  assert.equal(col('color').type.typeId, A.Type.Dictionary);
  assert.deepEqual([0, 1, 2, 3].map((i) => col('color').get(i)), ['red', 'green', 'blue', 'red']);
  assert.equal(col('empty').nullCount, 3000);
});

test('apache-arrow reads large offsets and lossless types from spicec', () => {
  const sql = "SELECT 'v' || i s, ('b' || i)::BLOB bl, CASE WHEN i % 3 = 0 THEN NULL ELSE [[i], [], NULL] END ll," +
    ' i::HUGEINT h, gen_random_uuid() IS NOT NULL ok FROM range(2500) t(i)';
  const { bytes, ours } = ourStream('large.arrows', sql, 'SET arrow_large_buffer_size = true',
    'SET arrow_lossless_conversion = true');
  const table = A.tableFromIPC(bytes);
  assert.equal(String(table.getChild('s').type), 'LargeUtf8');
  assert.equal(String(table.getChild('bl').type), 'LargeBinary');
  assert.equal(table.getChild('ll').type.typeId, A.Type.LargeList);
  assert.equal(table.getChild('s').get(2400), 'v2400');
  assert.deepEqual(canonical(table), ours.batches);
});

test('apache-arrow reads empty streams and empty batches from spicec', () => {
  const { bytes, ours } = ourStream('empty.arrows', "SELECT 1 a, 'x' b, [1] c WHERE false");
  const table = A.tableFromIPC(bytes);
  assert.equal(table.numRows, 0);
  assert.deepEqual(table.schema.fields.map((f) => f.name), ['a', 'b', 'c']);
  assert.deepEqual(ours.batches, []);
});

// Every type apache-arrow can build, with nulls, nesting and a dictionary.
function jsTable() {
  const f = (name, type) => new A.Field(name, type, true);
  const cols = {
    i8: A.vectorFromArray([1, null, -3, 127], new A.Int8),
    i16: A.vectorFromArray([1, null, -300, 32767], new A.Int16),
    i32: A.vectorFromArray([1, null, -3, 2147483647], new A.Int32),
    i64: A.vectorFromArray([1n, null, -3n, 9007199254740993n], new A.Int64),
    u8: A.vectorFromArray([1, null, 3, 255], new A.Uint8),
    u16: A.vectorFromArray([1, null, 3, 65535], new A.Uint16),
    u32: A.vectorFromArray([1, null, 3, 4294967295], new A.Uint32),
    u64: A.vectorFromArray([1n, null, 3n, 18446744073709551615n], new A.Uint64),
    f16: A.vectorFromArray([1.5, null, -2, 0.25], new A.Float16),
    f32: A.vectorFromArray([1.5, null, -2, 3.25], new A.Float32),
    f64: A.vectorFromArray([1.5, null, -2, Math.PI], new A.Float64),
    bool: A.vectorFromArray([true, null, false, true], new A.Bool),
    utf8: A.vectorFromArray(['a', null, '', 'ünïcödé ✓'], new A.Utf8),
    lutf8: A.vectorFromArray(['a', null, 'ccc', ''], new A.LargeUtf8),
    bin: A.vectorFromArray([new Uint8Array([1, 2]), null, new Uint8Array([]), new Uint8Array([255])], new A.Binary),
    lbin: A.vectorFromArray([new Uint8Array([1, 2]), null, new Uint8Array([]), new Uint8Array([0])], new A.LargeBinary),
    fsb: A.vectorFromArray([new Uint8Array([1, 2, 3]), null, new Uint8Array([4, 5, 6]), new Uint8Array([7, 8, 9])],
      new A.FixedSizeBinary(3)),
    dec: A.vectorFromArray([new Uint32Array([1, 0, 0, 0]), null, new Uint32Array([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
      new Uint32Array([5, 6, 7, 8])], new A.Decimal(2, 30, 128)),
    dday: A.vectorFromArray([new Date(86400000), null, new Date(0), new Date(-86400000)], new A.DateDay),
    dms: A.vectorFromArray([new Date(86400000), null, new Date(0), new Date(1700000000000)], new A.DateMillisecond),
    tss: A.vectorFromArray([1000, null, 2000, 0], new A.TimestampSecond),
    tsms: A.vectorFromArray([1000, null, 2000, 0], new A.TimestampMillisecond('UTC')),
    tsus: A.vectorFromArray([1000, null, 2000, 0], new A.TimestampMicrosecond),
    tsns: A.vectorFromArray([1000, null, 2000, 0], new A.TimestampNanosecond('Europe/Paris')),
    tms: A.vectorFromArray([10, null, 20, 86399], new A.TimeSecond),
    tmms: A.vectorFromArray([10, null, 20, 30], new A.TimeMillisecond),
    tmus: A.vectorFromArray([10n, null, 20n, 30n], new A.TimeMicrosecond),
    tmns: A.vectorFromArray([10n, null, 20n, 30n], new A.TimeNanosecond),
    durs: A.vectorFromArray([10n, null, -20n, 30n], new A.DurationSecond),
    durns: A.vectorFromArray([10n, null, -20n, 30n], new A.DurationNanosecond),
    ivym: A.vectorFromArray([new Int32Array([14]), null, new Int32Array([-1]), new Int32Array([0])], new A.IntervalYearMonth),
    ivdt: A.vectorFromArray([new Int32Array([1, 2]), null, new Int32Array([3, 4]), new Int32Array([0, 0])], new A.IntervalDayTime),
    ivmdn: A.vectorFromArray([new Int32Array([1, 2, 3, 0]), null, new Int32Array([0, 0, 0, 0]), new Int32Array([-1, 5, 7, 0])],
      new A.IntervalMonthDayNano),
    list: A.vectorFromArray([[1, 2], null, [], [null, 4]], new A.List(f('item', new A.Int32))),
    llist: A.vectorFromArray([['a'], null, [], ['b', null]], new A.LargeList(f('item', new A.Utf8))),
    fsl: A.vectorFromArray([[1, 2], null, [3, null], [5, 6]], new A.FixedSizeList(2, f('item', new A.Int32))),
    st: A.vectorFromArray([{ a: 1, b: 'x' }, null, { a: null, b: 'z' }, { a: 4, b: null }],
      new A.Struct([f('a', new A.Int32), f('b', new A.Utf8)])),
    nested: A.vectorFromArray([[{ v: [1n] }], null, [{ v: null }, null], []],
      new A.List(f('item', new A.Struct([f('v', new A.List(f('item', new A.Int64)))])))),
    map: A.vectorFromArray([new Map([['k', 1], ['l', null]]), null, new Map(), new Map([['z', 26]])],
      new A.Map_(new A.Field('entries', new A.Struct([new A.Field('key', new A.Utf8, false), f('value', new A.Int32)]), false))),
    dict: A.vectorFromArray(['a', null, 'b', 'a'], new A.Dictionary(new A.Utf8, new A.Int32)),
    dict8: A.vectorFromArray(['x', 'y', null, 'y'], new A.Dictionary(new A.Utf8, new A.Uint8)),
    nul: A.vectorFromArray([null, null, null, null], new A.Null),
  };
  return new A.Table(cols);
}

test('spicec reads what apache-arrow writes (every type apache-arrow builds), value for value', () => {
  const bytes = A.tableToIPC(jsTable(), 'stream');
  const file = path.join(dir, 'js.arrows');
  writeFileSync(file, bytes);
  const ours = JSON.parse(tool('read', file));
  const table = A.tableFromIPC(bytes);
  assert.deepEqual(ours.fields.map((f) => f.name), table.schema.fields.map((f) => f.name));
  const formats = Object.fromEntries(ours.fields.map((f) => [f.name, f.format]));
  assert.deepEqual(formats, {
    i8: 'c', i16: 's', i32: 'i', i64: 'l', u8: 'C', u16: 'S', u32: 'I', u64: 'L', f16: 'e', f32: 'f', f64: 'g',
    bool: 'b', utf8: 'u', lutf8: 'U', bin: 'z', lbin: 'Z', fsb: 'w:3', dec: 'd:30,2', dday: 'tdD', dms: 'tdm',
    tss: 'tss:', tsms: 'tsm:UTC', tsus: 'tsu:', tsns: 'tsn:Europe/Paris', tms: 'tts', tmms: 'ttm', tmus: 'ttu',
    tmns: 'ttn', durs: 'tDs', durns: 'tDn', ivym: 'tiM', ivdt: 'tiD', ivmdn: 'tin', list: '+l', llist: '+L',
    fsl: '+w:2', st: '+s', nested: '+l', map: '+m', dict: 'i', dict8: 'C', nul: 'n',
  });
  assert.deepEqual(ours.batches, canonical(table));
  // and spot checks against the inputs themselves
  const row = (name) => ours.batches[0].columns[ours.fields.findIndex((f) => f.name === name)];
  assert.deepEqual(row('utf8'), ['a', null, '', 'ünïcödé ✓']);
  assert.deepEqual(row('i64')[3], '0100000000002000'); // 2^53 + 1, little-endian
  assert.deepEqual(row('dict'), ['a', null, 'b', 'a']);
  assert.deepEqual(row('map')[0], [['k', '01000000'], ['l', null]]);
  assert.deepEqual(row('nested')[1], null);
  assert.deepEqual(row('nul'), [null, null, null, null]);
});

test('spicec reads apache-arrow streams with several batches cut from slices (a sliced null column too)', () => {
  const t = jsTable();
  const sliced = new A.Table([t.slice(1, 3).batches[0], t.slice(0, 1).batches[0], t.slice(2).batches[0]]
    .map((b) => new A.RecordBatch(b.schema, b.data)));
  const bytes = A.tableToIPC(sliced, 'stream');
  const file = path.join(dir, 'js-sliced.arrows');
  writeFileSync(file, bytes);
  const ours = JSON.parse(tool('read', file));
  assert.deepEqual(ours.batches.map((b) => b.length), [2, 1, 2]);
  assert.deepEqual(ours.batches, canonical(A.tableFromIPC(bytes)));
});

test('spicec refuses a damaged apache-arrow stream with a message', () => {
  const bytes = Buffer.from(A.tableToIPC(jsTable(), 'stream'));
  const file = path.join(dir, 'damaged.arrows');
  writeFileSync(file, bytes.subarray(0, bytes.length - 100));
  assert.throws(() => execFileSync(TOOL, ['read', file], { stdio: 'pipe' }), (e) => {
    assert.match(e.stderr.toString(), /malformed arrow ipc: /);
    return true;
  });
});

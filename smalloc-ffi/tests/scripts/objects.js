// Allocation-heavy JavaScript whose output must not depend on the allocator: objects, strings,
// maps, JSON, BigInt, Buffers and typed arrays.
'use strict';
const crypto = require('crypto');

let state = 2463534242;
function rand() {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state / 4294967296;
}

const objs = [];
for (let i = 0; i < 200000; i++) {
  objs.push({ id: i, name: 'item' + i, tags: Array.from({ length: i % 8 }, (_, j) => 't' + j), v: rand() });
}
objs.sort((a, b) => a.v - b.v || a.id - b.id);
console.log('objects', objs.length, objs[0].id, objs[objs.length - 1].id);

const m = new Map();
for (const o of objs) {
  const k = o.name.slice(-2);
  m.set(k, (m.get(k) || 0) + o.tags.length);
}
console.log('map', m.size, [...m.entries()].sort().slice(0, 5).join(';'));

let s = '';
for (let i = 0; i < 200000; i++) s += String.fromCharCode(97 + (i % 26));
console.log('string', s.length, crypto.createHash('sha256').update(s).digest('hex').slice(0, 16));

const json = JSON.stringify(objs.slice(0, 50000));
console.log('json', json.length, JSON.parse(json).length);

let big = 1n;
for (let i = 1n; i < 3000n; i++) big *= i;
console.log('bigint digits', big.toString().length);

const bufs = [];
for (let i = 0; i < 3000; i++) bufs.push(Buffer.alloc(1 + (i * 37) % 65536, i % 256));
console.log('buffers', bufs.reduce((a, b) => a + b.length, 0));

const arr = new Float64Array(1 << 20).map((_, i) => Math.sin(i));
console.log('typed', arr.reduce((a, b) => a + b, 0).toFixed(6));

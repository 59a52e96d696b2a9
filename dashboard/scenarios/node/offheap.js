'use strict';
// Off-heap memory: RSS and `external` grow while heapUsed stays flat ("heap < rss").
// A Buffer's bytes are allocated outside the V8 heap; the heap only holds a small handle.
// Run: node dashboard/scenarios/node/offheap.js --variant leaky|fixed [--rate 6 --item-kb 256]
const { run } = require('./_worker');

// Buffer.alloc(n, fill) writes every byte, so every page is touched and counts in RSS.
// (Plain Buffer.alloc(n) zero-fills via calloc, which may leave fresh pages untouched.)
const newChunk = (kb, i) => Buffer.alloc(kb * 1024, i % 255 + 1);

// region leaky
// Keep every buffer, e.g. "receive buffers" appended to an array nobody trims.
// heapUsed barely moves; external and RSS climb by item-kb per item.
const chunks = [];

function handleLeaky(i, itemKb) {
  chunks.push(newChunk(itemKb, i));
}
// endregion

// region fixed
// A bounded pool of maxItems buffers, reused round-robin. Dropping buffers and
// allocating new ones would be bounded too, but only once GC runs: the heap
// sees a tiny handle per buffer, so V8 feels no pressure to collect soon, and
// the dropped megabytes stay in RSS meanwhile. Reusing does not wait for GC.
const pool = [];
let next = 0;

function handleFixed(i, itemKb, maxItems) {
  if (pool[next] === undefined) pool[next] = Buffer.allocUnsafe(itemKb * 1024);
  pool[next].fill(i % 255 + 1); // the same work: every byte written
  next = (next + 1) % maxItems;
}
// endregion

run({
  scenario: 'offheap',
  make(args) {
    if (args.variant === 'leaky') return { rate: args.rate, step: (i) => handleLeaky(i, args.itemKb) };
    return { rate: args.rate, step: (i) => handleFixed(i, args.itemKb, args.maxItems) };
  },
});

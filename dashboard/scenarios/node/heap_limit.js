'use strict';
// Heap limit: what happens when a leak reaches V8's heap limit, vs bounded retention.
// memdash starts this with `node --max-old-space-size=<limit-mb>`. When the old space is
// full and GC cannot free anything, V8 aborts: "FATAL ERROR: ... JavaScript heap out of
// memory". That is not an exception: no catch, no cleanup, the process is gone.
// Run: node --max-old-space-size=96 dashboard/scenarios/node/heap_limit.js --variant leaky
const { run, payload } = require('./_worker');

// region leaky
// Every result is kept "for later". Nothing bounds the array, so it grows
// until the heap limit: GC runs harder and harder, then V8 gives up.
const results = [];

function handleLeaky(itemKb) {
  results.push(payload(itemKb));
}
// endregion

// region fixed
// The same work, but only the last maxItems results are kept (a ring buffer):
// the heap stays flat far below the limit and the process lives on.
const recent = [];
let next = 0;

function handleFixed(itemKb, maxItems) {
  recent[next] = payload(itemKb); // overwrites (releases) the oldest once full
  next = (next + 1) % maxItems;
}
// endregion

run({
  scenario: 'heap_limit',
  make(args) {
    if (args.variant === 'leaky') return { rate: args.rate, step: () => handleLeaky(args.itemKb) };
    return { rate: args.rate, step: () => handleFixed(args.itemKb, args.maxItems) };
  },
});

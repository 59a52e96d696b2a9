'use strict';
// Module accumulator: a module-level array every call appends to, vs the same with drain().
// The seed: `var queue = []; exports.push = function () { queue.push(Math.random()) }`.
// A module is cached by require() and lives as long as the process; so does its array.
// Run: node dashboard/scenarios/node/module_accumulator.js --variant leaky|fixed
const { run, payload } = require('./_worker');

// region leaky
// A "metrics" module: callers record an event, someone meant to ship them later.
// Nothing ever empties the array: every call makes it longer.
const leakyMetrics = (() => {
  const events = []; // module scope: lives as long as the process
  return {
    record(event) {
      events.push(event);
    },
  };
})();
// endregion

// region fixed
// The same module, but it gives callers a way to take its contents (the
// seed's advice: "provide an interface to clear the queue"). The caller
// drains the buffer regularly, ships the batch and the module forgets it.
const fixedMetrics = (() => {
  let pending = [];
  return {
    record(event) {
      pending.push(event);
    },
    drain() {
      const batch = pending;
      pending = [];
      return batch;
    },
  };
})();

const ship = (batch) => batch.length; // stands in for a log file, a socket, a metrics server

function handleFixed(i, itemKb, flushEvery) {
  fixedMetrics.record(payload(itemKb));
  if ((i + 1) % flushEvery === 0) ship(fixedMetrics.drain()); // the caller consumes it
}
// endregion

run({
  scenario: 'module_accumulator',
  make(args) {
    if (args.variant === 'leaky') {
      return { rate: args.rate, step: () => leakyMetrics.record(payload(args.itemKb)) };
    }
    return { rate: args.rate, step: (i) => handleFixed(i, args.itemKb, args.flushEvery) };
  },
});

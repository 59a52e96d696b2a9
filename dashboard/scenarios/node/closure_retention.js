'use strict';
// Closure retention: callbacks that capture a large object and stay registered.
// The seed's example: a setTimeout callback closing over `largeArr` keeps all of it alive.
// Here each request adds a listener to a long-lived EventEmitter.
// Run: node dashboard/scenarios/node/closure_retention.js --variant leaky|fixed
const { EventEmitter } = require('events');
const { run, payload } = require('./_worker');

// A long-lived emitter, e.g. the app's "shutdown" or "config changed" bus.
const bus = new EventEmitter();

// region leaky
function handleLeaky(requestId, itemKb) {
  const report = payload(itemKb); // a big object built for this request only
  // The listener uses `report`, so it keeps the whole string alive, and the
  // emitter keeps the listener alive. Forever: nobody calls bus.off().
  // (Node prints a MaxListenersExceededWarning after 10 listeners: a leak hint.)
  bus.on('shutdown', () => console.log(`request ${requestId}: ${report.length} chars`));
  return report.length;
}
// endregion

// region fixed
function handleFixed(requestId, itemKb) {
  const report = payload(itemKb);
  const size = report.length; // take only what the listener needs ...
  // ... so the closure holds a number. (V8 shares one context between all
  // closures of a scope: if ANY closure here used `report`, it would be kept.)
  const onShutdown = () => console.log(`request ${requestId}: ${size} chars`);
  bus.on('shutdown', onShutdown);
  try {
    return size;
  } finally {
    bus.off('shutdown', onShutdown); // and unregister it when the request is over
  }
}
// endregion

run({
  scenario: 'closure_retention',
  make(args) {
    const handle = args.variant === 'leaky' ? handleLeaky : handleFixed;
    return { rate: args.rate, step: (i) => handle(i, args.itemKb) };
  },
});

'use strict';
// A Node program that grows its heap when told to, for tests of `memdash run`: each stdin line
// "grow N" holds N more MiB of JS arrays, collects garbage (run with --expose-gc) and prints
// its own heap figures as one JSON line; "exit N" exits with code N. Between commands it
// holds still, so what a reporter sends then describes the heap it printed.
const held = [];
const rl = require('readline').createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: process.pid }));
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'exit') process.exit(Number(arg));
  if (cmd === 'grow') {
    for (let i = 0; i < Number(arg) * 16; i++) held.push(new Array(8192).fill(i)); // ~64 KiB
  }
  if (global.gc) global.gc();
  const m = process.memoryUsage();
  console.log(JSON.stringify({ heap_used: m.heapUsed, heap_total: m.heapTotal }));
});

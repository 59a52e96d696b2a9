'use strict';
// A Node `cluster` server (the primary and 2 workers) for tests of process trees, listening on
// 127.0.0.1 at the port given as the first argument.
// - GET /leak holds 256 KiB more (a filled Buffer, never freed) in worker 1 only;
// - GET /leak-all holds 256 KiB more in whichever worker serves it.
// Every answer is "<pid> leaked" or "<pid> kept". The primary prints {"ready": pid} once both
// workers listen. Round-robin scheduling (the default on Linux) shares connections evenly.
const cluster = require('cluster');
const http = require('http');

const port = Number(process.argv[2]);
if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on('listening', () => {
    if (++listening === 2) console.log(JSON.stringify({ ready: process.pid }));
  });
  process.stdin.on('end', () => process.exit(0)); // the test is gone: so are we
  process.stdin.resume();
} else {
  const held = [];
  http
    .createServer((req, res) => {
      const leak = req.url === '/leak-all' || (req.url === '/leak' && cluster.worker.id === 1);
      if (leak) held.push(Buffer.alloc(256 * 1024, 1)); // THE LEAK
      res.setHeader('Connection', 'close');
      res.end(`${process.pid} ${leak ? 'leaked' : 'kept'}`);
    })
    .listen(port, '127.0.0.1');
}

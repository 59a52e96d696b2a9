'use strict';
// Shared cache: N worker processes each keep their own copy of the same cache, vs Redis.
// A cache inside a process cannot be shared: with N workers the same data sits in memory
// N times. The fix is to keep the cache out of the processes, in Redis (or Memcached).
// Run: node dashboard/scenarios/node/shared_cache.js --variant leaky|fixed [--workers 3 --redis-port P]
// The RSS that matters is the sum over the process tree (this process + its workers).
const { fork } = require('child_process');
const net = require('net');
const { run, emit, payload } = require('./_worker');

// region leaky
// Every worker caches what it looked up in its own Map. The keys are the same in
// every worker, so the tree holds N copies, and with no size limit each copy grows.
const localCache = new Map();

function lookupLeaky(key, itemKb) {
  if (!localCache.has(key)) localCache.set(key, payload(itemKb)); // "load it from the database"
  return localCache.get(key);
}
// endregion

// region fixed
// Workers keep nothing: one copy lives in Redis, shared by all of them, and each
// key expires after `ttl` seconds, so Redis stays bounded too.
async function lookupFixed(redis, key, itemKb, ttl) {
  let value = await redis.call('GET', key);
  if (value === null) {
    value = payload(itemKb);
    await redis.call('SET', key, value, 'EX', ttl);
  }
  return value;
}
// endregion

// The smallest Redis client: RESP over a socket; replies come back in order.
class Redis {
  constructor(port, host = '127.0.0.1') {
    this.pending = []; // {resolve, reject} per command sent, oldest first
    this.buffer = Buffer.alloc(0);
    this.sock = net.connect(port, host);
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', (e) => {
      console.error(`redis on port ${port}: ${e.message}`);
      process.exit(1);
    });
  }

  call(...args) {
    let msg = `*${args.length}\r\n`;
    for (const a of args.map(String)) msg += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    this.sock.write(msg);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  onData(data) {
    this.buffer = Buffer.concat([this.buffer, data]);
    for (let r; (r = parseReply(this.buffer, 0)); ) {
      this.buffer = this.buffer.subarray(r.end);
      const p = this.pending.shift();
      if (r.value instanceof Error) p.reject(r.value);
      else p.resolve(r.value);
    }
  }
}

// One reply starting at `at`: {value, end}, or null until all of it has arrived.
function parseReply(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[at]);
  const rest = buf.toString('utf8', at + 1, eol);
  if (kind === '+') return { value: rest, end: eol + 2 };
  if (kind === '-') return { value: new Error(rest), end: eol + 2 };
  if (kind === ':') return { value: Number(rest), end: eol + 2 };
  if (kind === '$') {
    const n = Number(rest);
    if (n < 0) return { value: null, end: eol + 2 };
    if (buf.length < eol + 2 + n + 2) return null;
    return { value: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
  }
  if (kind === '*') {
    const items = [];
    let end = eol + 2;
    for (let k = 0; k < Number(rest); k++) {
      const r = parseReply(buf, end);
      if (!r) return null;
      items.push(r.value);
      end = r.end;
    }
    return { value: items, end };
  }
  throw new Error(`bad reply from redis: ${JSON.stringify(rest)}`);
}

function makeChild(args) {
  const key = (i) => `page:${i}`; // the same keys in every worker
  if (args.variant === 'leaky') return { rate: args.rate, step: (i) => lookupLeaky(key(i), args.itemKb) };
  const redis = new Redis(args.redisPort);
  return { rate: args.rate, step: (i) => lookupFixed(redis, key(i), args.itemKb, args.ttl) };
}

// Start the workers with fork(): each gets an IPC channel, sends us its stats (and its replies
// to commands) on it and exits on 'disconnect', i.e. as soon as this process is gone. Its stdin
// is a pipe from us: memdash's commands for that worker go there (and it ends with us too).
function makeParent(args) {
  const stats = new Map();
  const children = [];
  let allUp;
  const ready = new Promise((resolve) => (allUp = resolve));
  const argv = [...process.argv.slice(2), '--child'];
  for (let n = 0; n < args.workers; n++) {
    // stdout ignored: ours carries the protocol.
    const child = fork(__filename, argv, { stdio: ['pipe', 'ignore', 'inherit', 'ipc'] });
    child.stdin.on('error', () => {}); // it died: its 'exit' below says so
    child.on('message', (m) => {
      if (m.type !== 'child') return emit(m); // a reply to a command: on to memdash
      stats.set(n, m);
      if (stats.size === args.workers) allUp();
    });
    child.on('exit', (code, signal) => {
      console.error(`worker ${child.pid} exited (${signal || code})`);
      process.exit(1);
    });
    children.push(child);
  }
  const relay = (pid, command) => {
    const child = children.find((c) => c.pid === pid);
    if (!child) return false;
    child.stdin.write(JSON.stringify(command) + '\n');
    return true;
  };
  return { rate: 1, step() {}, children: () => [...stats.values()], ready, relay };
}

run({
  scenario: 'shared_cache',
  make: (args) => (args.child ? makeChild(args) : makeParent(args)),
});

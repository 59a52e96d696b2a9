'use strict';
// The common part of every Node scenario, so the scenario files stay short.
//
// A scenario calls run({scenario, options, make}); make(args) returns
// {step(i), rate, children?}. This module parses the common options, calls step(i) for
// i = 0, 1, 2, ... at `rate` items per second, checks its own RSS against --max-rss-mb
// every tick (20 a second), prints a `heap` line once a second and answers JSON-line
// commands on stdin. The protocol is documented in dashboard/scenarios/__init__.py.
// Node >= 18, built-in modules only.

const fs = require('fs');
const v8 = require('v8');
const crypto = require('crypto');

// Grow the heap less eagerly, so a fixed variant's RSS levels off within seconds (by
// default V8 keeps enlarging the heap for ~30 s first). Same flag for leaky and fixed.
// memdash also passes it on the command line, where it acts sooner (at heap set-up).
v8.setFlagsFromString('--optimize-for-size');

const TICK_MS = 50;
const EXIT_CAPPED = 3;

function emit(obj) {
  // stdout to a pipe or file is synchronous on Linux, so a line is out before process.exit().
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// A string of `kb` KiB that lives on the V8 heap (one byte per character, never shared).
function payload(kb) {
  return crypto.randomBytes(kb * 768).toString('base64');
}

const COMMON = {
  variant: { default: null, choices: ['leaky', 'fixed'] },
  duration: { default: 120 },
  'max-rss-mb': { default: 512 },
  'no-heap': { flag: true },
  child: { flag: true }, // shared_cache workers
};

// --name value / --name=value / --flag. Numbers stay numbers; unknown options are an error.
function parseArgs(scenario, options) {
  const spec = { ...COMMON, ...options };
  const args = {};
  for (const [name, o] of Object.entries(spec)) args[camel(name)] = o.flag ? false : o.default;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    let [name, value] = argv[i].replace(/^--/, '').split(/=(.*)/s);
    const o = spec[name];
    if (!argv[i].startsWith('--') || !o) usage(scenario, spec, `unknown option ${argv[i]}`);
    if (o.flag) {
      args[camel(name)] = true;
      continue;
    }
    if (value === undefined) value = argv[++i];
    if (value === undefined) usage(scenario, spec, `--${name} needs a value`);
    if (o.choices) {
      if (!o.choices.includes(value)) usage(scenario, spec, `--${name}: one of ${o.choices}`);
      args[camel(name)] = value;
    } else {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) usage(scenario, spec, `--${name}: a number`);
      args[camel(name)] = n;
    }
  }
  if (!args.variant) usage(scenario, spec, '--variant leaky|fixed is required');
  return args;
}

function camel(name) {
  return name.replace(/-(.)/g, (_, c) => c.toUpperCase());
}

function usage(scenario, spec, problem) {
  const opts = Object.entries(spec)
    .map(([n, o]) => `  --${n}${o.flag ? '' : ' ' + (o.choices ? o.choices.join('|') : o.default)}`)
    .join('\n');
  process.stderr.write(`usage: node ${scenario}.js [options]\n${opts}\nerror: ${problem}\n`);
  process.exit(2);
}

function heapStats() {
  const m = process.memoryUsage();
  return {
    heap_used: m.heapUsed,
    heap_total: m.heapTotal,
    external: m.external,
    array_buffers: m.arrayBuffers,
    rss: m.rss,
  };
}

function run({ scenario, options = {}, make }) {
  const args = parseArgs(scenario, options);
  if (args.child) return runChild(args, make);

  emit({ type: 'hello', runtime: 'node', scenario, variant: args.variant, pid: process.pid });
  if (stdinIsPipe()) readCommands(); // run by hand from a terminal: no commands, no exit on EOF

  const work = make(args);
  // shared_cache: start the clock once its workers are up
  Promise.resolve(work.ready).then(() => loop(work, args));
}

function loop(work, args) {
  const cap = args.maxRssMb * 2 ** 20;
  const children = () => (work.children ? work.children() : []);
  const checkCap = () => {
    let rss = process.memoryUsage.rss();
    for (const c of children()) rss += c.rss || 0;
    if (rss > cap) {
      const mib = Math.round(rss / 2 ** 20);
      emit({ type: 'capped', reason: `rss ${mib} MiB over the ${args.maxRssMb} MiB cap` });
      process.exit(EXIT_CAPPED);
    }
  };

  const start = Date.now();
  let done = 0;
  let nextHeap = start + 1000;
  setInterval(() => {
    const now = Date.now();
    if (now - start >= args.duration * 1000) {
      emit({ type: 'done', reason: 'duration reached' });
      process.exit(0);
    }
    // Items due by now; catch up at most half a second of work per tick.
    const due = Math.min(Math.floor(((now - start) / 1000) * work.rate), done + Math.max(1, Math.floor(work.rate / 2)));
    let lastCheck = now;
    while (done < due) {
      work.step(done++);
      if (Date.now() - lastCheck > TICK_MS) {
        checkCap(); // a slow step must not skip the cap
        lastCheck = Date.now();
      }
    }
    checkCap();
    if (!args.noHeap && now >= nextHeap) {
      const h = heapStats();
      delete h.rss;
      for (const c of children()) {
        for (const k of Object.keys(h)) h[k] += c[k] || 0;
      }
      emit({ type: 'heap', t: Date.now() / 1000, ...h });
      nextHeap += 1000;
    }
  }, TICK_MS);
}

// A shared_cache worker, started with child_process.fork(): work until the parent goes
// ('disconnect' fires when the IPC channel closes) and send it our stats 4 times a second.
function runChild(args, make) {
  process.on('disconnect', () => process.exit(0));
  const work = make(args);
  const start = Date.now();
  let done = 0;
  setInterval(() => {
    const due = Math.floor(((Date.now() - start) / 1000) * work.rate);
    while (done < due) work.step(done++);
  }, TICK_MS);
  setInterval(() => process.send({ type: 'child', ...heapStats() }), 250);
}

function stdinIsPipe() {
  try {
    const s = fs.fstatSync(0);
    return s.isFIFO() || s.isSocket();
  } catch {
    return false;
  }
}

function readCommands() {
  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) command(line);
    }
  });
  process.stdin.on('end', () => process.exit(0)); // EOF: memdash died, so do we
}

function command(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return emit({ type: 'error', message: 'not a JSON line' });
  }
  const name = cmd && cmd.cmd;
  if (name === 'heap_snapshot') {
    if (typeof cmd.path !== 'string' || !cmd.path) {
      return emit({ type: 'error', message: 'heap_snapshot: path must be a string' });
    }
    try {
      // Synchronous: the scenario pauses while V8 walks the heap (about a second per 100 MB).
      const path = v8.writeHeapSnapshot(cmd.path);
      emit({ type: 'heap_snapshot', path });
    } catch (e) {
      emit({ type: 'error', message: `heap_snapshot: ${e.message}` });
    }
  } else if (name === 'leak_report') {
    emit({ type: 'error', message: 'leak_report is Python only; use heap_snapshot' });
  } else {
    emit({ type: 'error', message: `unknown command: ${JSON.stringify(name)}` });
  }
}

module.exports = { run, emit, payload };

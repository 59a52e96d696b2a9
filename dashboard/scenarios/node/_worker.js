'use strict';
// The common part of every Node scenario, so the scenario files stay short.
//
// A scenario calls run({scenario, make}); make(args) returns {step(i), rate, children?}.
// This module parses the command line (the scenario's params come from ../catalogue.json,
// the catalogue memdash shows and validates against), calls step(i) for i = 0, 1, 2, ... at
// `rate` items per second, checks its own RSS against --max-rss-mb every tick (20 a second),
// prints a `heap` line once a second and answers JSON-line commands on stdin. The protocol
// is documented in dashboard/scenarios/__init__.py. Node >= 18.3, built-in modules only.

const fs = require('fs');
const readline = require('readline');
const util = require('util');
const v8 = require('v8');
const crypto = require('crypto');
const CATALOGUE = require('../catalogue.json');

// Grow the heap less eagerly, so a fixed variant's RSS levels off within seconds (by
// default V8 keeps enlarging the heap for ~30 s first). Same flag for leaky and fixed.
// memdash also passes it on the command line, where it acts sooner (at heap set-up).
v8.setFlagsFromString('--optimize-for-size');

const TICK_MS = 50;
const EXIT_CAPPED = 3;
const EXIT_USAGE = 2;
const RECENT_S = 10; // seconds of memoryUsage() kept, to tell a heap leak from an off-heap one

let asChild = false; // a shared_cache worker: its protocol lines go to the parent over IPC
let relay = null; // shared_cache's parent: (pid, command) => forwarded to that worker?
const recent = []; // {t, rss, heap_used, external}, once a second, the last RECENT_S seconds

function emit(obj) {
  if (asChild) return process.send(obj);
  // stdout to a pipe or file is synchronous on Linux, so a line is out before process.exit().
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function replyError(message) {
  emit({ type: 'error', message, pid: process.pid });
}

function remember() {
  const m = process.memoryUsage();
  recent.push({ t: Date.now() / 1000, rss: m.rss, heap_used: m.heapUsed, external: m.external });
  while (recent.length > RECENT_S + 1) recent.shift();
}

// How RSS, the JS heap and external memory moved over the last seconds (before an action
// that disturbs them): a growing RSS with a flat heap is a leak outside the V8 heap.
function recentGrowth() {
  remember();
  const [first, last] = [recent[0], recent[recent.length - 1]];
  return {
    seconds: Math.round((last.t - first.t) * 10) / 10,
    rss_diff: last.rss - first.rss,
    heap_diff: last.heap_used - first.heap_used,
    external_diff: last.external - first.external,
  };
}

// A string of `kb` KiB that lives on the V8 heap (one byte per character, never shared).
function payload(kb) {
  return crypto.randomBytes(kb * 768).toString('base64');
}

const FLAGS = {
  'no-heap': 'no heap lines',
  'dry-run': 'print the params as a JSON line and exit',
  help: 'show this help and exit',
};

// Every param of the scenario, in catalogue order: the common ones first.
function paramsOf(scenario) {
  const sc = CATALOGUE.scenarios.find((s) => s.id === scenario);
  if (!sc) throw new Error(`${scenario} is not in catalogue.json`);
  return [...CATALOGUE.common_params, ...sc.params];
}

const kebab = (name) => name.replace(/_/g, '-');
const camel = (name) => name.replace(/[-_](.)/g, (_, c) => c.toUpperCase()); // max_rss_mb: maxRssMb

// --name value / --name=value / --flag. Params arrive validated from memdash, so they are
// only typed here (a run by hand gets exit 2 for a value that is not a number).
function parseCommandLine(scenario) {
  const params = paramsOf(scenario);
  const options = { variant: { type: 'string' }, child: { type: 'boolean' } }; // child: shared_cache
  for (const flag of Object.keys(FLAGS)) options[flag] = { type: 'boolean' };
  for (const p of params) options[kebab(p.name)] = { type: 'string' };
  let values;
  try {
    ({ values } = util.parseArgs({ options, strict: true }));
  } catch (e) {
    usage(scenario, params, e.message);
  }
  if (values.help) usage(scenario, params);
  if (!CATALOGUE.variants.includes(values.variant)) {
    usage(scenario, params, `--variant ${CATALOGUE.variants.join('|')} is required`);
  }
  const args = { variant: values.variant, child: !!values.child };
  for (const flag of Object.keys(FLAGS)) args[camel(flag)] = !!values[flag];
  for (const p of params) {
    const text = values[kebab(p.name)];
    const n = text === undefined ? p.default : Number(text);
    const typed = Number.isFinite(n) && (p.type === 'float' || Number.isInteger(n));
    if (!typed || (text !== undefined && !text.trim())) {
      usage(scenario, params, `--${kebab(p.name)}: ${p.type === 'int' ? 'an integer' : 'a number'}`);
    }
    args[camel(p.name)] = n;
  }
  return args;
}

// Without a problem: the help on stdout, exit 0; with one: usage on stderr, exit 2.
function usage(scenario, params, problem) {
  const lines = [`usage: node ${scenario}.js --variant ${CATALOGUE.variants.join('|')} [options]`];
  for (const p of params) {
    const bounds = `${p.min}-${p.max} ${p.unit}`.trim();
    lines.push(`  --${kebab(p.name)} ${p.default}  ${p.help} (${bounds})`);
  }
  for (const [flag, help] of Object.entries(FLAGS)) lines.push(`  --${flag}  ${help}`);
  if (problem === undefined) {
    process.stdout.write(lines.join('\n') + '\n');
    process.exit(0);
  }
  process.stderr.write(`${lines.join('\n')}\nerror: ${problem}\n`);
  process.exit(EXIT_USAGE);
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

function run({ scenario, make }) {
  const args = parseCommandLine(scenario);
  if (args.dryRun) {
    const params = Object.fromEntries(paramsOf(scenario).map((p) => [p.name, args[camel(p.name)]]));
    emit({ type: 'params', runtime: 'node', scenario, variant: args.variant, params });
    return;
  }
  if (args.child) return runChild(args, make);

  emit({ type: 'hello', runtime: 'node', scenario, variant: args.variant, pid: process.pid });
  if (stdinIsPipe()) readCommands(); // run by hand from a terminal: no commands, no exit on EOF

  const work = make(args);
  relay = work.relay || null;
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
      emit({ type: 'capped', reason: `memory cap ${args.maxRssMb} MiB (rss ${mib} MiB)` });
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
      remember();
    }
  }, TICK_MS);
}

// A shared_cache worker, started with child_process.fork(): work until the parent goes
// ('disconnect' fires when the IPC channel closes; stdin, the parent's pipe for commands, hits
// EOF too) and send it our stats 4 times a second; replies to commands go over IPC as well.
function runChild(args, make) {
  asChild = true;
  process.on('disconnect', () => process.exit(0));
  if (stdinIsPipe()) readCommands();
  setInterval(remember, 1000);
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
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim()) command(line.trim());
  });
  lines.on('close', () => process.exit(0)); // EOF: memdash died, so do we
}

function command(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return replyError('not a JSON line');
  }
  const name = cmd && cmd.cmd;
  const pid = cmd && cmd.pid;
  if (pid !== undefined && pid !== null && pid !== process.pid) {
    // for one of our workers (shared_cache): it replies itself, through us
    if (!relay || !relay(pid, cmd)) replyError(`no process ${JSON.stringify(pid)} among this run's workers`);
  } else if (name === 'heap_snapshot') {
    if (typeof cmd.path !== 'string' || !cmd.path) {
      return replyError('heap_snapshot: path must be a string');
    }
    try {
      const growth = recentGrowth(); // before the snapshot, which adds tens of MB to RSS
      // Synchronous: the scenario pauses while V8 walks the heap (about a second per 100 MB).
      const path = v8.writeHeapSnapshot(cmd.path);
      emit({ type: 'heap_snapshot', path, pid: process.pid, ...growth });
    } catch (e) {
      replyError(`heap_snapshot: ${e.message}`);
    }
  } else if (name === 'leak_report') {
    replyError('leak_report is Python only; use heap_snapshot');
  } else {
    replyError(`unknown command: ${JSON.stringify(name)}`);
  }
}

module.exports = { run, emit, payload };

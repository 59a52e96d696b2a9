'use strict';
// memdash's Node reporter, loaded into any node process with NODE_OPTIONS="--require <this>".
//
// When MEMDASH_REPORT names the Unix socket of a memdash receiver, it sends one JSON line a
// second over its own connection: process.memoryUsage() and v8.getHeapStatistics() in the
// names of memdash's samples. The receiver identifies the sender by the kernel's peer
// credentials, so cluster workers (which inherit NODE_OPTIONS and the environment) report as
// processes of their own.
//
// It runs inside someone else's program, so:
// - nothing here keeps the program alive: the timer and the socket are unref()'d, and the
//   first step is an unref()'d timer, so a program that ends at once (`node -e 0`, npm
//   --version) never even loads `net` or `worker_threads`;
// - any error (no socket, receiver gone) makes it go quiet: no throw, no output;
// - worker threads are skipped (their heap is not the process's; the main thread reports),
//   and a second copy loaded in the same process does nothing.
//
// memdash may send commands back, one JSON line each ({"cmd", "id", ...}); each is answered
// with one line {"reply": id, "type": ...}: heap_snapshot {path} (v8.writeHeapSnapshot, which
// pauses the program while it writes, as DevTools does) and leak_report {seconds} (V8's
// sampling heap profiler through an in-process inspector.Session: no port is opened).
(function memdashReporter() {
  const INTERVAL_MS = 1000;
  const MAX_BUFFERED = 64 * 1024; // receiver not reading: drop reports rather than queue them
  const key = Symbol.for('memdash.reporter');
  try {
    const path = process.env.MEMDASH_REPORT;
    if (!path || globalThis[key]) return;
    globalThis[key] = true;
    setTimeout(() => {
      // Here, not at load: require('worker_threads') costs milliseconds of start-up.
      try {
        if (require('worker_threads').isMainThread) start(path);
      } catch (_) {
        // quiet
      }
    }, 0).unref();
  } catch (_) {
    // quiet
  }

  function start(path) {
    let sock = null;
    let timer = null;
    const quiet = () => {
      if (timer) clearInterval(timer);
      timer = null;
      if (sock) sock.destroy();
    };
    const send = () => {
      try {
        if (sock.destroyed || sock.writableLength > MAX_BUFFERED) return;
        sock.write(JSON.stringify(report()) + '\n');
      } catch (_) {
        quiet();
      }
    };
    try {
      sock = require('net').createConnection(path);
      sock.on('error', quiet);
      sock.on('close', quiet);
      let inbox = '';
      sock.setEncoding('utf8');
      sock.on('data', (data) => {
        inbox += data;
        let end;
        while ((end = inbox.indexOf('\n')) >= 0) {
          const line = inbox.slice(0, end);
          inbox = inbox.slice(end + 1);
          command(sock, line);
        }
        if (inbox.length > 65536) inbox = ''; // no command is that long
      });
      sock.unref();
      send(); // queued until connected: the page learns at once that this process reports
      timer = setInterval(send, INTERVAL_MS);
      timer.unref();
    } catch (_) {
      quiet();
    }
  }

  function command(sock, line) {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (_) {
      return;
    }
    if (!cmd || typeof cmd !== 'object') return;
    const reply = (body) => {
      try {
        sock.write(JSON.stringify({ reply: cmd.id, pid: process.pid, ...body }) + '\n');
      } catch (_) {
        // quiet
      }
    };
    try {
      if (cmd.cmd === 'heap_snapshot' && typeof cmd.path === 'string') {
        const started = Date.now();
        const file = require('v8').writeHeapSnapshot(cmd.path);
        const size = require('fs').statSync(file).size;
        reply({ type: 'heap_snapshot', size, seconds: (Date.now() - started) / 1000 });
      } else if (cmd.cmd === 'leak_report') {
        leakReport(Math.min(Math.max(Number(cmd.seconds) || 5, 0.1), 60), reply);
      } else {
        reply({ type: 'error', message: `unknown command: ${JSON.stringify(cmd.cmd)}` });
      }
    } catch (e) {
      reply({ type: 'error', message: String((e && e.message) || e) });
    }
  }

  function leakReport(seconds, reply) {
    const session = new (require('inspector').Session)();
    session.connect();
    const before = process.memoryUsage();
    const fail = (err) => {
      session.disconnect();
      reply({ type: 'error', message: String(err.message || err) });
    };
    session.post('HeapProfiler.startSampling', { samplingInterval: 32768 }, (err) => {
      if (err) return fail(err);
      const stop = () =>
        session.post('HeapProfiler.stopSampling', (err2, result) => {
          if (err2) return fail(err2);
          session.disconnect();
          const after = process.memoryUsage();
          reply({
            type: 'leak_report',
            method: 'sampling heap profiler',
            seconds,
            rss_diff: after.rss - before.rss,
            heap_diff: after.heapUsed - before.heapUsed,
            top: topSites(result.profile),
          });
        });
      setTimeout(stop, seconds * 1000).unref();
    });
  }

  // The same ranking as dashboard/inspector.py top_sites(): bytes still alive by site.
  function topSites(profile) {
    const counts = new Map();
    for (const s of profile.samples || []) counts.set(s.nodeId, (counts.get(s.nodeId) || 0) + 1);
    const sites = new Map();
    const todo = [profile.head];
    while (todo.length) {
      const node = todo.pop();
      todo.push(...(node.children || []));
      if (!node.selfSize) continue;
      const f = node.callFrame;
      const key = `${f.functionName}\0${f.url}\0${f.lineNumber}`;
      let site = sites.get(key);
      if (!site) {
        site = {
          function: f.functionName || '(anonymous)',
          file: f.url || '(native)',
          line: f.lineNumber + 1,
          column: f.columnNumber + 1,
          size: 0,
          count: 0,
        };
        sites.set(key, site);
      }
      site.size += node.selfSize;
      site.count += counts.get(node.id) || 0;
    }
    return [...sites.values()]
      .sort((a, b) => b.size - a.size)
      .slice(0, 10)
      .map((s) => ({ ...s, size_diff: s.size, count_diff: s.count }));
  }

  function report() {
    const m = process.memoryUsage();
    const h = require('v8').getHeapStatistics();
    return {
      runtime: 'node',
      heap_used: m.heapUsed,
      heap_total: m.heapTotal,
      external: m.external,
      array_buffers: m.arrayBuffers,
      reported_rss: m.rss, // the program's own view; the sample's rss comes from /proc
      heap_limit: h.heap_size_limit,
      v8_heap_used: h.used_heap_size,
      v8_heap_total: h.total_heap_size,
      malloced: h.malloced_memory,
    };
  }
})();

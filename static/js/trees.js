// A process tree on the page: a `children` watch (the server's total) and one watch per
// member, fed by the watch ack's `members` and the `tree` event. Members are watches of their
// own (their batches come as {pid: member, children: false}) that this page did not ask for
// itself: they are not sent, not in the URL, and go with their tree. A member that exits
// keeps its history and exit mark on the chart and leaves the tree's list. The server ranks
// the members by growth ("which worker leaks"); the page ranks nothing itself.

import { confirmWatch, emit, markExited, membersOf, putMember, state, watchKey } from "./state.js";

/** Apply a tree summary (watch ack or `tree` event) to the tree watch `tree`. */
export function applyTree(tree, msg) {
  if (!tree || !tree.children || tree.runId) return; // a lab run's processes: the runs list
  const rows = Array.isArray(msg.members) ? msg.members : [];
  let changed = !tree.tree;
  tree.tree = {
    rows: rows.map(({ samples, bucket, ...row }) => row),
    ranking: Array.isArray(msg.ranking) ? msg.ranking : rows.map((r) => r.pid),
    root_exited: !!msg.root_exited,
    extra: msg.extra || 0,
    note: msg.note || "",
  };
  const listed = new Set();
  for (const row of rows) {
    listed.add(row.pid);
    const known = state.watches.has(watchKey(row.pid, false));
    const m = putMember(tree, row.pid);
    if (!known) changed = true;
    if (row.growth !== undefined && row.growth !== null) m.growth = row.growth;
    const process = m.process || { pid: row.pid, name: row.name, cmdline: row.cmdline };
    if (row.samples) confirmWatch(m, process, row.samples, row.bucket || 0);
    else if (!m.confirmed) { m.process = process; m.confirmed = true; }
  }
  for (const m of membersOf(tree)) {
    if (listed.has(m.pid) || m.left) continue;
    // Gone from the tree: it exited (its process_exit may still be on its way).
    m.left = true;
    changed = true;
    if (!m.exited) markExited(m, m.lastT ?? state.newestT);
  }
  emit(changed ? "tree-changed" : "tree-ranking", tree);
}

/** The tree's members now in it, in the server's ranking order (the biggest grower first). */
export function rankedMembers(tree) {
  const info = tree.tree;
  if (!info) return [];
  const order = new Map(info.ranking.map((pid, i) => [pid, i]));
  return info.rows
    .map((row) => ({ row, watch: state.watches.get(watchKey(row.pid, false)) }))
    .filter((m) => m.watch && !m.watch.left)
    .sort((a, b) => (order.get(a.row.pid) ?? 1e9) - (order.get(b.row.pid) ?? 1e9));
}

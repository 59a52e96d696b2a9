// Full resolution where the viewer zooms in. A long history arrives as min/max pairs per
// bucket (the watch ack's `bucket`): right for the whole window, too coarse for a zoom into
// it. When a zoom reaches into that part, fetch every sample from the zoom's start
// (GET /api/processes/<pid>/samples?since=, open to the audience for shown processes) and
// put them in place of the pairs.

import { api } from "./api.js";
import { state } from "./state.js";
import { showError } from "./toast.js";

/** `range`: the x range now shown, [lo, hi] epoch seconds; `redraw()` once samples landed. */
export async function refine(range, redraw) {
  if (!range) return;
  const [lo] = range;
  const jobs = [];
  for (const w of state.watches.values()) {
    if (!(w.bucket > 0) || lo >= w.coarseUntil || w.refining) continue;
    w.refining = true;
    const query = `since=${encodeURIComponent(lo)}&children=${w.children ? 1 : 0}`;
    jobs.push(api(`/api/processes/${encodeURIComponent(w.pid)}/samples?${query}`)
      .then((r) => { if (state.watches.get(w.key) === w) w.refine(lo, r.samples || []); })
      .catch((err) => showError(err, `full resolution of ${w.pid}`))
      .finally(() => { w.refining = false; }));
  }
  if (!jobs.length) return;
  await Promise.all(jobs);
  redraw();
}

// Leak lab wire-up: the scenario catalogue, the runs (model and list) and the
// leak-finding tools, connected to each other. Each piece owns one concern; this file
// only passes the callbacks between them.

import { dashOf } from "./chart-colours.js";
import { compareSelected, loadCatalogue } from "./lab-catalogue.js";
import { initRuns } from "./lab-runs.js";
import { initTools } from "./lab-tools.js";
import { initRunsTable } from "./runs-table.js";
import { isPresenter } from "./state.js";

/**
 * `addWatch` is connection.addWatch, `chart` the Chart (run marks and colours),
 * `onRunsChanged` redraws what else depends on runs (chart traces, stats rows) and
 * `onResult(result)` hears of each tool result shown (null: closed). The audience gets no
 * control that starts, stops or measures anything: those are not even wired.
 */
export function initLab({ addWatch, chart, onRunsChanged, onResult }) {
  const tools = initTools(document.getElementById("findings"), { onChange: onResult });
  const table = initRunsTable(document.getElementById("runs"), {
    watch: (run) => addWatch(run.pid, true, { runId: run.run_id }),
    stop: (run, btn) => runs.stop(run, btn),
    toolFor: tools.forRun,
    mappings: tools.runMappings,
    colourOf: (run) => chart.runColour(run),
    dashOf: (run) => dashOf(run),
  });
  const runs = initRuns({
    addWatch,
    chart,
    onChange() { table.render(); onRunsChanged(); },
  });
  const stopAll = document.getElementById("stop-all");
  const clear = document.getElementById("clear-finished");
  if (isPresenter()) {
    stopAll.addEventListener("click", () => runs.stopAll(stopAll));
    clear.addEventListener("click", () => runs.clearFinished(clear));
  }

  loadCatalogue(document.getElementById("scenarios"), isPresenter() ? runs.launch : null);
  runs.load();
  table.render();
  return {
    upsertRun: runs.upsert,
    loadRuns: runs.load,
    renderRuns: table.render,
    updateVerdicts: table.updateVerdicts,
    mappings: tools.mappings,
    /** Language-heap tools of any process: {leakReport(w, btn), heapSnapshot(w, btn)}. */
    heapTools: { leakReport: tools.leakReport, heapSnapshot: tools.heapSnapshot },
    mark: runs.mark,
    cleared: runs.cleared,
    compareSelected,
    stopAll: () => runs.stopAll(stopAll),
    /** The tool result on screen (or null), and showing the presenter's. */
    result: tools.current,
    showResult: tools.render,
  };
}

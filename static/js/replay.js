// Replay (memdash open FILE): the bar with a time slider (the recording's start..end, the
// cursor's time beside it), play/pause and 1×/10×, shown only when `hello.replay` is set.
// The server owns the cursor: the bar sends `seek {t}`, `play {speed}`, `pause` (the
// presenter's; the audience's bar only moves) and draws the `replay` state it gets back,
// moving the slider on its own between the server's once-a-second updates while playing.
// When the cursor jumps (its `seek` count changes) the page drops its samples, runs, marks
// and tool result and watches again without `since`; the server then sends what lies up to
// the new cursor. A recorded tool's result (`tool_result`) opens in the results panel.
// Controls that change anything are hidden (body[data-replay], `.live-only`): a recording
// is read-only.

import { button } from "./dom.js";
import { resendWatches, send } from "./connection.js";
import { formatClock } from "./format.js";
import { forgetHistory, isPresenter, on, state } from "./state.js";
import { showError } from "./toast.js";
import { recordedResult } from "./tool-results.js";

const SPEEDS = [1, 10];
const TICK_MS = 100;

function seconds(s) { return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`; }

/**
 * `onSeek()` redraws after the page dropped its history (chart marks, runs, results);
 * `showResult(result)` opens a result in the results panel (null closes it).
 * Returns {active(), toggle()}: toggle is play/pause (the Space key while replaying).
 */
export function initReplay({ onSeek, showResult }) {
  const bar = document.getElementById("replay");
  const playBtn = document.getElementById("replay-play");
  const slider = document.getElementById("replay-slider");
  const time = document.getElementById("replay-time");
  const speedBox = document.getElementById("replay-speed");
  let seen = null;       // the last `seek` count: a new one means the cursor jumped
  let arrived = 0;       // performance.now() when the last cursor state came
  let dragging = false;  // the slider is in the viewer's hand: do not move it under them
  let speed = 1;         // the speed the next play asks for
  let ticker = null;

  /** The cursor now: the server's last word, moved on locally while playing. */
  function cursor() {
    const r = state.replay;
    if (!r.playing) return r.t;
    return Math.min(r.end, r.t + ((performance.now() - arrived) / 1000) * r.speed);
  }

  function showTime(t) {
    const r = state.replay;
    time.textContent = `${formatClock(t)} · ${seconds(Math.max(0, t - r.start))} of ${seconds(r.end - r.start)}`;
    bar.dataset.t = String(t);
  }

  function render() {
    const r = state.replay;
    // The server's last word, for tests and styles (the slider shows the moving cursor).
    bar.dataset.cursor = JSON.stringify(r);
    bar.dataset.playing = r.playing ? "1" : "0";
    playBtn.textContent = r.playing ? "❚❚ Pause" : "▶ Play";
    playBtn.setAttribute("aria-pressed", String(r.playing));
    for (const b of speedBox.children) b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === speed));
    slider.min = String(r.start);
    slider.max = String(r.end);
    if (!dragging) slider.value = String(cursor());
    showTime(dragging ? Number(slider.value) : cursor());
    clearInterval(ticker);
    ticker = r.playing ? setInterval(() => { if (!dragging) { slider.value = String(cursor()); showTime(cursor()); } }, TICK_MS) : null;
  }

  /** A cursor state from the server (`hello`, `replay`, or a control's ack). */
  function apply(r) {
    const jumped = seen !== null && r.seek !== seen;
    seen = r.seek;
    state.replay = r;
    arrived = performance.now();
    if (r.playing) speed = r.speed;
    if (jumped) {
      forgetHistory();
      showResult(null);
      onSeek();
      resendWatches();
    }
    render();
  }

  async function control(event, payload) {
    try { apply(await send(event, payload)); } catch (err) { showError(err, `replay ${event}`); }
  }

  function toggle() {
    if (!state.replay || !isPresenter()) return;
    if (state.replay.playing) control("pause");
    else control("play", { speed });
  }

  speedBox.replaceChildren(...SPEEDS.map((s) => button({
    text: `${s}×`, "data-speed": s, title: `Play at ${s}× the recorded speed`,
    onclick: () => {
      speed = s;
      if (state.replay?.playing) control("play", { speed });
      else render();
    },
  })));
  playBtn.addEventListener("click", toggle);
  slider.addEventListener("input", () => { dragging = true; showTime(Number(slider.value)); });
  slider.addEventListener("change", () => {
    dragging = false;
    control("seek", { t: Number(slider.value) });
  });

  on("hello", (hello) => {
    document.body.dataset.replay = hello.replay ? "1" : "0";
    bar.hidden = !hello.replay;
    if (!hello.replay) return;
    slider.disabled = !isPresenter(); // the audience follows the presenter's cursor
    apply(hello.replay);
  });
  on("replay", (r) => state.replay && apply(r));
  on("tool-result", (tr) => showResult(recordedResult(tr)));

  return { active: () => !!state.replay, toggle };
}

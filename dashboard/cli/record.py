"""``memdash record``: headless recording to a session file, like psrecord and mprof.

    memdash record --pid PID [--pid ...] [--children] [--duration S] [--interval S] [-o FILE]
    memdash record [options] [-o FILE] -- CMD ARGS...

The second form starts CMD (its stdio is memdash's), records it with its children from its
first sample, forwards SIGTERM (and a Ctrl-C that did not already reach it from the terminal)
and exits with its exit code. No web server: a Sampler and a RecorderSink, nothing else (no
Flask is imported). Usage errors are one line and exit code 2; a command that does not exist,
127 (126 when it is not executable), as a shell says.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time

from .. import errors, validate
from ..recorder_sink import RecorderSink
from ..recording import Recorder
from ..sampler import Sampler
from ..sessions import default_session_path
from .common import (
    UsageError,
    check_pids,
    end_child,
    exit_code,
    fail,
    resolve,
    spawn,
    terminal_sent_it,
)

USAGE = (
    "memdash record --pid PID [--pid ...] [--children] [--duration S] [--interval S] [-o FILE]\n"
    "       memdash record [options] [-o FILE] -- CMD ARGS..."
)
HOLDER = "record"  # a socket-like holder, so the detail figures (USS, PSS, swap) are read too


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str] | None]:
    """(options, command): the command is what follows ``--`` (None without ``--``)."""
    parser = argparse.ArgumentParser(prog="memdash record", usage=USAGE,
                                     description="Record processes' memory to a file.")  # fmt: skip
    parser.add_argument("--pid", action="append", default=[], metavar="PID",
                        help="record this process (repeatable)")  # fmt: skip
    parser.add_argument(
        "--children",
        action="store_true",
        help="sum each --pid with its descendants (psrecord's --include-children)",
    )
    parser.add_argument(
        "--duration",
        default=None,
        metavar="S",
        help="stop after S seconds (default: until they exit, or Ctrl-C)",
    )
    parser.add_argument("--interval", default="0.1", metavar="S",
                        help="seconds between samples (0.02-10, default 0.1)")  # fmt: skip
    parser.add_argument("--detail-interval", default="1", metavar="S",
                        help="seconds between USS/PSS/swap reads (default 1)")  # fmt: skip
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="the recording (default: a new file in the sessions directory)",
    )
    if "--" in argv:
        cut = argv.index("--")
        return parser.parse_args(argv[:cut]), argv[cut + 1 :]
    return parser.parse_args(argv), None


def check(args: argparse.Namespace, command: list[str] | None) -> dict:
    """The settings, or UsageError."""
    if command is not None and not command:
        raise UsageError("record: no command after --")
    if command is None and not args.pid:
        raise UsageError("record: give --pid PID (repeatable) or -- CMD ARGS...")
    try:
        interval = validate.number_text(args.interval, "--interval", 0.02, 10)
        detail = validate.number_text(args.detail_interval, "--detail-interval", interval, 60)
        duration = None
        if args.duration is not None:
            duration = validate.number_text(args.duration, "--duration", -1e12, 1e9)
            if duration <= 0:
                raise errors.BadRequest(
                    f"--duration must be more than 0 seconds, got {args.duration}"
                )
    except errors.MemdashError as e:
        raise UsageError(e.message) from None
    pids = check_pids(args.pid)
    if command:
        resolve(command[0])
    return {"interval": interval, "detail": detail, "duration": duration, "pids": pids}


class Exits:
    """A sampler sink that only notes which targets have exited."""

    def __init__(self) -> None:
        self.gone: set[tuple[int, bool]] = set()
        self.changed = threading.Event()

    def flushed(self, batches) -> None:
        pass

    def exited(self, target, t: float, reason: str) -> None:
        self.gone.add((target.pid, target.children))
        self.changed.set()


def main(argv: list[str]) -> int:
    try:
        args, command = parse_args(argv)
        settings = check(args, command)
        path = args.output or default_session_path()
        recorder = Recorder(path, interval=settings["interval"])
    except (UsageError, errors.MemdashError) as e:  # locked, not a recording, newer, ...
        return fail(e)
    sampler = Sampler(interval=settings["interval"], detail_interval=settings["detail"],
                      history_seconds=max(10.0, 20 * settings["interval"]), linger=0)  # fmt: skip
    sink, exits = RecorderSink(recorder), Exits()
    sampler.add_sink(sink)
    sampler.add_sink(exits)
    watched: list[tuple[int, bool]] = []
    for pid in settings["pids"]:
        try:
            sampler.watch(pid, args.children, HOLDER)
            watched.append((pid, args.children))
        except errors.MemdashError as e:
            print(f"memdash: warning: --pid {pid}: {e.message}", file=sys.stderr)
    stop = threading.Event()
    child: subprocess.Popen | None = None

    def on_signal(signum, frame):
        if child is not None and child.poll() is None:
            if signum != signal.SIGINT or not terminal_sent_it(child.pid):
                child.send_signal(signum)
        else:
            stop.set()

    started = time.monotonic()
    code = 0
    try:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        if command:
            try:
                child = spawn(command)
            except UsageError as e:
                return fail(e)
            try:
                sampler.watch(child.pid, True, HOLDER)  # with its children, from its first tick
                watched.append((child.pid, True))
            except errors.MemdashError:
                pass  # already gone: its exit code still counts
        sampler.start()
        what = ", ".join(str(pid) for pid, _ in watched) or "nothing"
        print(f"memdash: recording pid {what} to {path}; Ctrl-C to stop", file=sys.stderr,
              flush=True)  # fmt: skip
        deadline = None if settings["duration"] is None else started + settings["duration"]
        warned = False
        while not stop.is_set():
            if child is not None and child.poll() is not None:
                code = exit_code(child.returncode)
                # the sampler notices the exit at its next read: wait for it (bounded)
                end = time.monotonic() + 2 * settings["interval"] + 1
                while (child.pid, True) in watched and (child.pid, True) not in exits.gone:
                    if time.monotonic() > end:
                        break
                    exits.changed.wait(0.05)
                break
            if child is None and watched and set(watched) <= exits.gone:
                break  # every recorded process has exited
            if deadline is not None and time.monotonic() >= deadline:
                break
            if recorder.error and not warned:
                warned = True
                print(f"memdash: error: {recorder.error}", file=sys.stderr, flush=True)
                if child is None:
                    code = 1
                    break
            stop.wait(0.05)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sampler.flush()  # the last samples, then stop
        sampler.stop()
        end_child(child)
        recorder.flush()
        recorder.close()
    status = sink.status()
    if status["error"]:
        print(f"memdash: error: {status['error']}", file=sys.stderr)
        code = code or 1
    print(f"memdash: recorded {status['written']} samples in {time.monotonic() - started:.1f} s"
          f" to {path}", file=sys.stderr)  # fmt: skip
    return code

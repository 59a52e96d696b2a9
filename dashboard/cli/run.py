"""``memdash run [options] -- CMD ARGS...``: start a program with its language heap reported,
and the dashboard open on it (with its children) from its first sample.

The program keeps the terminal: its stdin, stdout and stderr are memdash's, so memdash's own
lines go to stderr. Ctrl-C and SIGTERM are forwarded to it, and memdash exits with its exit
code (128 + the signal when a signal ended it) once it has exited, stopping the dashboard;
``--keep-open`` leaves the dashboard up until Ctrl-C. Node and Python programs (and their
children: cluster, multiprocessing, gunicorn workers) load a reporter through NODE_OPTIONS /
PYTHONPATH (dashboard/reporters); any other program still gets RSS and the rest, and the
page says "no language heap".
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading

from .. import errors
from ..reporters import Receiver, child_env
from .common import UsageError, end_child, exit_code, fail, resolve, spawn, terminal_sent_it
from .options import add_dashboard_options, check_args
from .startup import (
    announce,
    bind_socket,
    heap_sources,
    make_server,
    open_browser,
    start_memdash,
    start_up,
)

OWNER = "cli"  # the sampler's holder for the program and every process that reports
DEFAULT_PORT = 8765
USAGE = "memdash run [options] -- CMD ARGS..."


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(options, command). Everything after the first ``--`` is the command; without ``--``,
    the first word that is not an option starts it."""
    parser = argparse.ArgumentParser(
        prog="memdash run",
        usage=USAGE,
        description="Start CMD with its Node or Python heap reported, and the dashboard on it.",
    )
    add_dashboard_options(parser)
    parser.set_defaults(port=None)  # 8765, or any free port when that one is taken
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="Python programs trace their allocations from start-up (Find the leak); slower",
    )
    parser.add_argument(
        "--keep-open",
        action="store_true",
        help="keep the dashboard up after the program has exited, until Ctrl-C",
    )
    if "--" in argv:
        cut = argv.index("--")
        options, command = argv[:cut], argv[cut + 1 :]
        return parser.parse_args(options), command
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return args, args.command


class Reports:
    """The receiver's callback: a process that reports is recorded from its first report
    (the program is already; its reporting children get a series each), and its figures go
    to its next sample."""

    def __init__(self, memdash) -> None:
        self.memdash = memdash
        self.root: int | None = None
        self.ready = threading.Event()  # the program's pid is known
        self.kept: set[int] = set()

    def __call__(self, pid: int, fields: dict) -> None:
        self.ready.wait(5)
        if pid != self.root and pid not in self.kept:
            self.kept.add(pid)
            try:
                self.memdash.sampler.keep(pid, False, owner=OWNER)
                self.memdash.pinned.add(pid)
            except errors.MemdashError:
                pass  # already gone
        self.memdash.sampler.add_extra(pid, fields)


def main(argv: list[str]) -> int:
    try:
        args, command = parse_args(argv)
        if not command:
            raise UsageError(f"run: no command given; usage: {USAGE}", 2)
        resolve(command[0])
        auto_port = args.port is None
        if auto_port:
            args.port = str(DEFAULT_PORT)
        settings = check_args(args)
        if auto_port:
            try:
                sock = bind_socket(args.host, DEFAULT_PORT)
            except UsageError:  # another memdash has it: any free port will do
                sock = bind_socket(args.host, 0)
        else:
            sock = bind_socket(args.host, settings["port"])
        app, policy, room = start_up(args, settings, sock)
    except UsageError as e:
        return fail(e)
    memdash = app.extensions["memdash"]
    heaps = heap_sources(app)
    heaps.tracemalloc = args.tracemalloc
    reports = Reports(memdash)
    start_memdash(memdash)
    heaps.receiver = Receiver(reports).start()
    server = make_server(app, sock)
    threading.Thread(target=server.serve_forever, name="memdash-http", daemon=True).start()

    done = threading.Event()  # --keep-open: Ctrl-C after the program ended
    child: subprocess.Popen | None = None

    def forward(signum, frame):
        if child is None or child.returncode is not None:
            done.set()
        elif signum != signal.SIGINT or not terminal_sent_it(child.pid):
            child.send_signal(signum)  # checks it has not been reaped first

    try:
        env = child_env(heaps.receiver.path, tracemalloc=args.tracemalloc)
        child = spawn(command, env)
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        reports.root = child.pid
        reports.ready.set()
        heaps.programs[child.pid] = {"command": command}
        memdash.pinned.add(child.pid)
        try:
            memdash.sampler.keep(child.pid, True, owner=OWNER)  # with its children, at once
        except errors.MemdashError:
            pass  # it has already exited: its exit code still counts
        query = [("cpid", child.pid)] + [("pid", pid) for pid in settings["pids"]]
        url = announce(args, sock, policy, room, query, out=sys.stderr)
        print(f"memdash: started {command[0]} (pid {child.pid})", file=sys.stderr, flush=True)
        open_browser(args, url)

        code = exit_code(child.wait())
        heaps.programs[child.pid]["exit_code"] = code
        how = f"exited with code {code}"
        if child.returncode < 0:
            how = f"was ended by {signal.Signals(-child.returncode).name} (exit code {code})"
        print(f"memdash: {command[0]} (pid {child.pid}) {how}", file=sys.stderr, flush=True)
        if args.keep_open:
            print(f"memdash: the dashboard stays open on {url}; Ctrl-C to stop", file=sys.stderr)
            while not done.wait(0.5):
                pass
        return code
    except UsageError as e:  # the program could not be started
        return fail(e)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        end_child(child)
        print("memdash: shutting down", file=sys.stderr, flush=True)
        server.shutdown()
        heaps.close()
        memdash.stop()

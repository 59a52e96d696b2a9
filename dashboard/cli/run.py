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
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading

from .. import assets, errors
from ..reporters import Receiver, child_env
from .serve import (
    UsageError,
    add_dashboard_options,
    announce,
    bind_socket,
    build_app,
    check_args,
    heap_sources,
    make_server,
    open_browser,
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


def resolve(name: str, path: str | None) -> str:
    """The executable ``name`` runs, like a shell finds it; UsageError with the shell's exit
    code (127 not found, 126 not executable) in ``args``."""
    if "/" in name:
        if not os.path.exists(name):
            raise UsageError(f"{name}: no such file", 127)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise UsageError(f"{name}: permission denied (not an executable file)", 126)
        return name
    found = shutil.which(name, path=path)
    if found is None:
        raise UsageError(f"{name}: command not found", 127)
    return found


def exit_code(returncode: int) -> int:
    """A shell's exit code for a child's return code: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def terminal_sent_it(child_pid: int) -> bool:
    """Whether a SIGINT memdash got came from Ctrl-C at its terminal *and* the program got it
    too: the terminal signals its whole foreground process group, so when memdash and the
    program are both in it, forwarding would deliver Ctrl-C twice. A SIGINT from `kill` (or
    when the program left memdash's group) is forwarded."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: it came from kill
    try:
        return os.tcgetpgrp(fd) == os.getpgrp() == os.getpgid(child_pid)
    except OSError:
        return False
    finally:
        os.close(fd)


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
        resolve(command[0], os.environ.get("PATH"))
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
    except UsageError as e:
        print(f"memdash: error: {e.args[0]}", file=sys.stderr)
        return e.args[1] if len(e.args) > 1 else 2
    missing = assets.missing()
    if missing:
        print(f"memdash: warning: {', '.join(missing)} missing; run `make setup`", file=sys.stderr)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app, policy, room = build_app(args, settings, sock, settings["pids"])
    except errors.MemdashError as e:
        print(f"memdash: error: {e.message}", file=sys.stderr)
        sock.close()
        return 2
    memdash = app.extensions["memdash"]
    heaps = heap_sources(app)
    heaps.tracemalloc = args.tracemalloc
    reports = Reports(memdash)
    memdash.start()
    if memdash.recorder is not None:
        print(f"memdash: recording to {memdash.recorder.path}", file=sys.stderr, flush=True)
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
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as e:  # raced: gone or changed since resolve()
            print(f"memdash: error: {command[0]}: {e.strerror}", file=sys.stderr)
            return 127 if isinstance(e, FileNotFoundError) else 126
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
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if child is not None and child.poll() is None:  # memdash itself failed: not orphaned
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        print("memdash: shutting down", file=sys.stderr, flush=True)
        server.shutdown()
        heaps.close()
        memdash.stop()

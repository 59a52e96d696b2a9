"""``memdash [options]``: serve the dashboard on loopback and open it in a browser.

Usage errors (a port in use, a bad PID, an interval out of range, a process --inspect will not
touch) print one line and exit with code 2; Ctrl-C and SIGTERM stop the scenario workers and
exit cleanly. The options are cli/options.py's, the start-up cli/startup.py's (both shared
with ``memdash run``).
"""

from __future__ import annotations

import sys

from .. import inspector
from ..inspector import InspectError, Inspector
from ..reporters import Receiver
from ..reporters.attach import attach_python
from ..reporters.sources import HeapSources
from .common import UsageError, fail
from .options import check_args, parse_args
from .startup import (  # noqa: F401  (bind_socket and serve: dashboard.__main__'s names)
    announce,
    bind_socket,
    discard_recording,
    heap_sources,
    open_browser,
    serve,
    serve_until_stopped,
    start_memdash,
    start_up,
)


def attach_inspectors(pids: list[int], heaps: HeapSources, on_heap) -> None:
    """``--inspect``: attach to each pid, every one checked before any is signalled. Node:
    its inspector (CDP); Python >= 3.14: the reporter through sys.remote_exec (reporters/attach.py).
    UsageError with the one-line reason; those already attached are detached again."""
    runtimes = {}
    for pid in pids:
        try:
            runtimes[pid] = inspector.runtime_of(pid)
            reason = inspector.python_attach_message(pid) if runtimes[pid] == "python" else ""
        except InspectError as e:
            reason = str(e)
        if reason:
            raise UsageError(f"--inspect {pid}: {reason}")
    for pid in pids:
        try:
            if runtimes[pid] == "python":
                if heaps.receiver is None:
                    heaps.receiver = Receiver(on_heap).start()
                attach_python(pid, heaps.receiver)
                print(
                    f"memdash: attached to python {pid} (sys.remote_exec: a reporter thread "
                    "in it sends its heap until memdash stops)",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            heaps.inspectors[pid] = Inspector(pid, on_heap).attach()
        except (InspectError, OSError, RuntimeError) as e:
            heaps.close()
            raise UsageError(f"--inspect {pid}: {e}") from None
        status = heaps.inspectors[pid].status()
        how = "opened" if status["opened_by_memdash"] else "already open"
        print(
            f"memdash: attached to node {pid} (inspector {how} on 127.0.0.1:{status['port']})",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = check_args(args)
        if args.inspect and not settings["pids"]:
            raise UsageError("--inspect needs --pid PID (a running node program)")
        sock = bind_socket(args.host, settings["port"])
        app, policy, room = start_up(args, settings, sock)
    except UsageError as e:
        return fail(e)
    memdash = app.extensions["memdash"]  # the extension (dashboard.extension.Memdash)
    heaps = heap_sources(app)
    if args.inspect:
        try:
            attach_inspectors(settings["pids"], heaps, memdash.sampler.add_extra)
        except UsageError as e:
            discard_recording(app)
            sock.close()
            return fail(e)
    start_memdash(memdash)
    pinned = "cpid" if args.children else "pid"  # the page's name for a watch with children
    url = announce(args, sock, policy, room, [(pinned, pid) for pid in settings["pids"]])
    open_browser(args, url)

    def cleanup() -> None:
        heaps.close()
        memdash.stop()

    serve_until_stopped(app, sock, cleanup)
    return 0

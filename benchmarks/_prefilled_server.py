"""A memdash server whose watched processes already have ``--seconds`` of history (bench_room's
late joiners): the real app and Werkzeug server of ``python -m dashboard``, with the given PIDs
kept (as ``--pid`` keeps them) and their histories filled with synthetic 10 Hz samples ending
now (a slow climb with a spike a minute), so nobody waits 30 minutes for a 30-minute history.

With ``--window W`` (> 0) a ``watch`` acks ``History.backfill(since, window=W)`` instead of the
whole history: what events.watch does once it takes the ``window`` field (the planned wiring);
``--window 0`` keeps today's whole-history ack. Unless ``--binary-check``, packets skip
python-socketio's search of every payload for binary parts (a Python walk of every value of
every sample, per ack), as ``SocketIO(..., serializer=JsonPacket)`` would.

    .venv/bin/python benchmarks/_prefilled_server.py [--seconds 1800] [--window 300] PID...
"""

from __future__ import annotations

import argparse
import logging
import time

import _common  # noqa: F401  (puts the repo root on sys.path)

from dashboard import history
from dashboard.__main__ import bind_socket, serve
from dashboard.app import create_app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("pids", nargs="+", type=int)
    p.add_argument("--seconds", type=float, default=1800)
    p.add_argument("--window", type=float, default=300)
    p.add_argument(
        "--binary-check",
        action="store_true",
        help="keep python-socketio's walk of every payload for binary parts (today's default)",
    )
    args = p.parse_args()
    if not args.binary_check:  # the proposed serializer=JsonPacket of extension.init_app
        import socketio

        socketio.packet.Packet.uses_binary_events = False
    if args.window > 0:
        whole = history.History.since

        def since(self, t=None):  # the planned events.watch wiring, for this benchmark only
            return self.backfill(since=t, window=args.window)[0]

        history.History.since = since
        history.History.whole = whole
    logging.basicConfig(level=logging.WARNING)
    app = create_app({"INTERVAL": 0.1, "PINNED_PIDS": args.pids, "HISTORY_SECONDS": 1800})
    memdash = app.extensions["memdash"]
    n = int(args.seconds * 10)
    now = time.time()
    for target in memdash.sampler.targets():
        base = target.read_fast()
        for i in range(n):
            s = {k: v + (i * 4096 if k == "rss" else 0) for k, v in base.items()}
            if i % 600 == 300:
                s["rss"] += 50 * 2**20  # a spike a minute: the backfill must keep it
            if i % 10 == 0:
                s.update(uss=s["rss"] // 2, pss=s["rss"] // 2, swap=0, anon=s["rss"] // 3)
            s["t"] = now - (n - i) / 10
            target.history.append(s)
    memdash.start()
    sock = bind_socket("127.0.0.1", 0)
    print(f"prefilled memdash serving on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    serve(app, sock)


if __name__ == "__main__":
    main()

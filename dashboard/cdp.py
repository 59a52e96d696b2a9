"""The Chrome DevTools Protocol, as memdash speaks it to a Node program
(dashboard/inspector.py attaches): :class:`Session`, one WebSocket connection whose reader
thread dispatches replies by id and events (heap snapshot chunks) by method, and
:func:`top_sites`, a sampling heap profile ranked by allocation site.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Callable, Optional

import websocket

from .inspect_target import InspectError


class Session:
    """One CDP connection: ``call(method, params)`` from any thread; ``on(method, fn)`` for
    events. Replies and events are read by one thread."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=5, suppress_origin=True)
        self.ws.settimeout(None)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, list] = {}  # id -> [event, reply]
        self._handlers: dict[str, Callable[[dict], None]] = {}
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="memdash-cdp", daemon=True)
        self._reader.start()

    def on(self, method: str, handler: Optional[Callable[[dict], None]]) -> None:
        with self._lock:
            if handler is None:
                self._handlers.pop(method, None)
            else:
                self._handlers[method] = handler

    def call(self, method: str, params: Optional[dict] = None, timeout: float = 10.0) -> dict:
        slot: list = [threading.Event(), None]
        with self._lock:
            if self.closed.is_set():
                raise InspectError("the inspector connection is closed (did the program exit?)")
            rid = next(self._ids)
            self._pending[rid] = slot
            try:
                self.ws.send(json.dumps({"id": rid, "method": method, "params": params or {}}))
            except (OSError, websocket.WebSocketException) as e:
                self._pending.pop(rid, None)
                raise InspectError(f"the inspector connection failed: {e}") from None
        if not slot[0].wait(timeout):
            with self._lock:
                self._pending.pop(rid, None)
            raise InspectError(f"the inspector did not answer {method} within {timeout:g} s")
        reply = slot[1]
        if reply is None:
            raise InspectError("the inspector connection closed (did the program exit?)")
        if "error" in reply:
            raise InspectError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                if "id" in message:
                    with self._lock:
                        slot = self._pending.pop(message["id"], None)
                    if slot is not None:
                        slot[1] = message
                        slot[0].set()
                    continue
                with self._lock:
                    handler = self._handlers.get(message.get("method"))
                if handler is not None:
                    handler(message.get("params", {}))
        except (OSError, ValueError, websocket.WebSocketException):
            pass  # closed: by us, or the program exited
        finally:
            with self._lock:
                self.closed.set()
                pending, self._pending = self._pending, {}
            for slot in pending.values():
                slot[0].set()

    def close(self) -> None:
        try:
            self.ws.send_close()
        except (OSError, websocket.WebSocketException):
            pass
        self.ws.shutdown()
        self._reader.join(2)


def top_sites(profile: dict, limit: int = 10) -> list[dict]:
    """Allocation sites of a sampling heap profile, biggest first: bytes still alive that were
    allocated there (V8 samples, scaled), and how many samples."""
    counts: dict[int, int] = {}
    for sample in profile.get("samples", []):
        counts[sample["nodeId"]] = counts.get(sample["nodeId"], 0) + 1
    sites: dict[tuple, dict] = {}
    todo = [profile["head"]]
    while todo:
        node = todo.pop()
        todo.extend(node.get("children", []))
        if not node.get("selfSize"):
            continue
        frame = node["callFrame"]
        key = (frame.get("functionName"), frame.get("url"), frame.get("lineNumber"))
        site = sites.setdefault(
            key,
            {
                "function": frame.get("functionName") or "(anonymous)",
                "file": frame.get("url") or "(native)",
                "line": frame.get("lineNumber", -1) + 1,  # CDP counts from 0
                "column": frame.get("columnNumber", -1) + 1,
                "size": 0,
                "count": 0,
            },
        )
        site["size"] += node["selfSize"]
        site["count"] += counts.get(node["id"], 0)
    ranked = sorted(sites.values(), key=lambda s: -s["size"])[:limit]
    # Everything sampled was allocated during the window: the growth is the size itself.
    return [{**s, "size_diff": s["size"], "count_diff": s["count"]} for s in ranked]

"""One writer for every WebSocket viewer: a message is encoded and framed once, and its bytes
are written to each viewer's socket from the emitting thread.

Why: in python-engineio's threading mode every client has its own writer thread blocked on a
queue. Emitting to a room of 100 puts the packet on 100 queues and wakes 100 threads, each of
which takes the GIL, frames the same text again (wsproto) and writes it; at 10 Hz that wake-up
churn was most of the server's CPU (py-spy, benchmarks/bench_room.py). A server-to-client
WebSocket frame is not masked, so one frame's bytes are valid on every connection.

How, without forking the libraries:

- Engine.IO builds each WebSocket through ``server._async["websocket"]``; the server gets a
  subclass of its own (:class:`_TrackedWebSocket`) that registers the connection here and
  serialises the writer thread's sends with ours (one lock per connection).
- :meth:`Fanout.send` writes with ``MSG_DONTWAIT``: it never waits for a viewer. What a
  viewer's socket does not take stays in that viewer's backlog; its own writer thread is woken
  (an Engine.IO NOOP packet) to finish it, blocking only itself.
- A backlog over ``max_backlog`` bytes, or one waiting for ``max_behind`` seconds, means the
  viewer stopped reading while the kernel's buffers filled: it is dropped (socket shut down)
  with a logged reason.

Order: a fan-out frame may overtake what still waits in a viewer's Engine.IO queue (an ack,
even the Socket.IO connect answer); socket.io-client buffers events until its namespace is
connected, and the page merges samples by time (state.js), so one that comes before its
watch's ack, or twice, is drawn once.

Frames are never compressed here: permessage-deflate, where a browser negotiated it, keeps
a context per connection, and RFC 7692 lets any message go uncompressed (RSV1 clear).
Polling clients, and WebSockets still upgrading, are returned to the caller for the ordinary
Engine.IO path.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Iterable, Iterator

import engineio
import socketio
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from wsproto.frame_protocol import FrameProtocol

log = logging.getLogger(__name__)

MAX_BACKLOG = 256 * 1024  # bytes the kernel would not take: ~25 s of a 5-process viewer
MAX_BEHIND = 15.0  # seconds a viewer's kernel buffer may stay full (a slow link's big ack: less)
# A viewer's kernel send buffer (Linux doubles it): bounded, so a stalled viewer is found in
# seconds (~13 s of a 5-process viewer's samples) and costs the machine little, instead of the
# ~4 MiB autotuning allows.
SNDBUF = 64 * 1024


class _TrackedWebSocket(SimpleWebSocketWSGI):
    """Engine.IO's threading WebSocket, known to a :class:`Fanout` while it is open."""

    fanout: Fanout  # set on the per-server subclass (in Fanout.__init__)

    def __call__(self, environ, start_response):
        self.eio_socket = self.app.__self__  # the handler is the Engine.IO socket's method
        self.io_lock = threading.Lock()  # one writer on the wire at a time
        self.backlog_lock = threading.Lock()  # guards ``backlog`` only, never held for I/O
        self.backlog = bytearray()
        self.woken = False
        self.behind_since: float | None = None  # when the backlog last started to fill
        self.dropped = False
        self.tuned = False  # its send buffer bounded (on the first fan-out write)
        self.fanout._opened(self)
        try:
            return super().__call__(environ, start_response)
        finally:
            self.fanout._closed(self)

    def send(self, message):
        """The Engine.IO writer thread's send: first what the fan-out left behind."""
        with self.io_lock:
            self._drain(blocking=True)
            result = super().send(message)
            self._drain(blocking=True)
            return result

    # -- the backlog -------------------------------------------------------------------------

    def _drain(self, blocking: bool) -> None:
        """Write the backlog: all of it (``blocking``, the writer thread) or what the socket
        takes now. Called with ``io_lock`` held."""
        sock = self.ws.sock
        while True:
            with self.backlog_lock:
                if not self.backlog:
                    self.woken = False
                    self.behind_since = None
                    return
                chunk = bytes(self.backlog)
            if blocking:
                sock.sendall(chunk)
                sent = len(chunk)
            else:
                sent = self._send_some(chunk)
            with self.backlog_lock:
                del self.backlog[:sent]
            if sent < len(chunk) and not blocking:
                return

    def _send_some(self, data: bytes) -> int:
        """How much of ``data`` the socket takes now, without waiting."""
        try:
            return self.ws.sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0

    def write(self, frame: bytes) -> bool:
        """The fan-out's write, never waiting: straight to the socket when nothing waits (the
        usual case: one send, no copy), else behind the backlog. Whether bytes still wait
        (for this viewer's writer thread); raises OSError when the connection is going."""
        if not self.io_lock.acquire(blocking=False):  # its writer is on the wire: it drains
            with self.backlog_lock:
                self.backlog += frame
            return True
        try:
            with self.backlog_lock:
                queued = bool(self.backlog)
                if queued:
                    self.backlog += frame
            if queued:
                self._drain(blocking=False)
                return bool(self.backlog)
            sent = self._send_some(frame)
            if sent == len(frame):
                return False
            with self.backlog_lock:  # the rest of this frame goes on the wire first
                self.backlog[0:0] = frame[sent:]
            return True
        finally:
            self.io_lock.release()

    def usable(self) -> bool:
        """Open, upgraded, not dropped, and its socket never waits inside ``send`` (a timeout
        would make Python poll before a MSG_DONTWAIT send)."""
        ws = getattr(self, "ws", None)
        s = self.eio_socket
        return (
            ws is not None
            and ws.connected
            and not self.dropped
            and s.upgraded
            and not s.upgrading
            and not s.closed
            and ws.sock.gettimeout() in (None, 0.0)
        )


class Fanout:
    """``Fanout(sio_server)``; ``send(event, args, sids)`` returns the sids it could not take
    (polling or upgrading clients), for the caller's ordinary emit."""

    def __init__(
        self,
        server: socketio.Server,
        max_backlog: int = MAX_BACKLOG,
        sndbuf: int = SNDBUF,
        max_behind: float = MAX_BEHIND,
    ) -> None:
        self.server = server
        self.max_backlog = max_backlog
        self.max_behind = max_behind
        self.sndbuf = sndbuf
        self._open: dict[str, _TrackedWebSocket] = {}  # Engine.IO sid -> its WebSocket
        self._lock = threading.Lock()
        self._corked = threading.local()  # .frames: {ws: [frame, ...]} inside corked()
        eio = server.eio
        tracked = type("TrackedWebSocket", (_TrackedWebSocket,), {"fanout": self})
        eio._async = {**eio._async, "websocket": tracked}  # this server's copy only

    def _opened(self, ws: _TrackedWebSocket) -> None:
        with self._lock:
            self._open[ws.eio_socket.sid] = ws

    def _closed(self, ws: _TrackedWebSocket) -> None:
        with self._lock:
            if self._open.get(ws.eio_socket.sid) is ws:
                del self._open[ws.eio_socket.sid]

    def frame(self, event: str, args: tuple) -> bytes:
        """The WebSocket frame of Socket.IO ``event`` with ``args`` on namespace "/"."""
        text = self.server.packet_class(
            socketio.packet.EVENT, namespace="/", data=[event, *args]
        ).encode()
        text = engineio.packet.Packet(engineio.packet.MESSAGE, data=text).encode()
        return FrameProtocol(client=False, extensions=[]).send_data(text, fin=True)

    def recipients(self, to: str | list[str] | None) -> Iterable[tuple[str, str | None]]:
        """(Socket.IO sid, Engine.IO sid) pairs for ``to`` (None: everyone on "/")."""
        manager = self.server.manager
        if to is None:
            return list(manager.get_participants("/", None))
        sids = [to] if isinstance(to, str) else to
        return [(sid, manager.eio_sid_from_sid(sid, "/")) for sid in sids]

    def send(self, event: str, args: tuple, to: str | list[str] | None) -> list[str]:
        frame = None
        rest = []
        corked = getattr(self._corked, "frames", None)
        for sid, eio_sid in self.recipients(to):
            ws = self._open.get(eio_sid) if eio_sid else None
            if ws is None or not ws.usable():
                if eio_sid is not None and (ws is None or not ws.dropped):
                    rest.append(sid)
                continue
            if frame is None:
                frame = self.frame(event, args)
            if corked is None:
                self._write(ws, frame)
            else:
                corked.setdefault(ws, []).append(frame)
        return rest

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """What this thread sends inside the block goes out at its end, one write per viewer:
        the sampler's tick (samples, and once a second growth and system memory) costs each
        viewer one send, not three. A loopback send that wakes its reader costs tens of µs."""
        self._corked.frames = frames = {}
        try:
            yield
        finally:
            self._corked.frames = None
            for ws, mine in frames.items():
                self._write(ws, mine[0] if len(mine) == 1 else b"".join(mine))

    def _write(self, ws: _TrackedWebSocket, frame: bytes) -> None:
        if not ws.tuned:
            ws.tuned = True
            try:
                ws.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            except OSError:
                return  # closing already

        try:
            if not ws.write(frame):
                return
        except OSError:
            return  # the connection is going; Engine.IO's reader notices and closes it
        now = time.monotonic()
        with ws.backlog_lock:
            waiting, wake = len(ws.backlog), bool(ws.backlog) and not ws.woken
            ws.woken = ws.woken or wake
            if waiting and ws.behind_since is None:
                ws.behind_since = now
            behind = now - ws.behind_since if waiting else 0.0
        if waiting > self.max_backlog or behind > self.max_behind:
            self._drop(ws, waiting, behind)
        elif wake:  # its own writer thread finishes the frame, blocking only itself
            ws.eio_socket.queue.put(engineio.packet.Packet(engineio.packet.NOOP))

    def _drop(self, ws: _TrackedWebSocket, waiting: int, behind: float) -> None:
        ws.dropped = True
        log.warning(
            "dropping viewer %s: %d KiB not taken by its socket for %.0f s (stalled: not reading)",
            ws.eio_socket.sid,
            waiting // 1024,
            behind,
        )
        try:  # wakes its reader (EOF) and writer (EPIPE); Engine.IO then closes the session
            ws.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

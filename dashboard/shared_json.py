"""JSON text encoded once and spliced into many messages: the backfill a room of late joiners
all ask for at the same moment.

A watch ack carries up to ``max_points`` samples per series (~170 kB of JSON); a hundred viewers
joining one session within a second used to cost a hundred encodings of the same list per
process, holding the GIL long enough to delay everyone's live samples. An :class:`Encoded`
value stands in the payload for text encoded earlier; :func:`dumps` (the packet class's JSON
module, see ``extension.JsonPacket``) writes that text where the value is.

Every message the server sends is encoded here, ten flushes a second per group of viewers,
so it uses orjson (a maintained C encoder, an order of magnitude faster than the standard
library's on a flush of samples) with the same compact output. What orjson refuses (an int
beyond 64 bits, a lone surrogate from an odd command line) goes through :mod:`json` as
before. orjson writes ``null`` for NaN, which a browser can parse.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import orjson

loads = json.loads  # what viewers send: little, and the standard library's errors
_COMPACT = (",", ":")


class Encoded:
    """JSON text, already encoded, to be written as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _fragment(value: Any) -> orjson.Fragment:
    if not isinstance(value, Encoded):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return orjson.Fragment(value.text)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes each :class:`Encoded` value's text in its place."""
    if kwargs.get("separators", _COMPACT) == _COMPACT and kwargs.keys() <= {"separators"}:
        try:
            return orjson.dumps(obj, default=_fragment, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # orjson.JSONEncodeError too: json says what it can, or why not
            pass
    return _stdlib_dumps(obj, **kwargs)


def _stdlib_dumps(obj: Any, **kwargs: Any) -> str:
    texts: list[str] = []
    nonce = ""  # made at the first Encoded value: most messages (live samples) have none

    def default(value: Any) -> str:
        nonlocal nonce
        if not isinstance(value, Encoded):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        nonce = nonce or secrets.token_hex(8)  # no string of the payload holds it by chance
        texts.append(value.text)
        return f"\x00{nonce}{len(texts) - 1}\x00"

    text = json.dumps(obj, default=default, **kwargs)
    for i, raw in enumerate(texts):
        text = text.replace(f'"\\u0000{nonce}{i}\\u0000"', raw, 1)
    return text


def encode(value: Any) -> Encoded:
    """``value`` encoded now, as the packets encode it."""
    return Encoded(dumps(value, separators=_COMPACT))


class Shared:
    """The last ``size`` results by key: ``get(key, make)`` calls ``make()`` once per key (the
    caller makes the key name everything the result depends on)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:  # held while making: viewers asking the same wait for this one
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            found = self._items[key] = make()
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return found

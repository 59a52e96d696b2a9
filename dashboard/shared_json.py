"""JSON text encoded once and spliced into many messages: the backfill a room of late joiners
all ask for at the same moment.

A watch ack carries up to ``max_points`` samples per series (~170 kB of JSON); a hundred viewers
joining one session within a second used to cost a hundred encodings of the same list per
process, holding the GIL long enough to delay everyone's live samples. An :class:`Encoded`
value stands in the payload for text encoded earlier; :func:`dumps` (the packet class's JSON
module, see ``extension.JsonPacket``) writes that text where the value is.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

loads = json.loads


class Encoded:
    """JSON text, already encoded, to be written as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes each :class:`Encoded` value's text in its place."""
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
    return Encoded(json.dumps(value, separators=(",", ":")))


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

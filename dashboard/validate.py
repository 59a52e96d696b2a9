"""Numbers from clients, checked one way: a JSON number, a query argument or a command-line
option within bounds, or :class:`errors.BadRequest` with one message style."""

from __future__ import annotations

import math

from . import errors


def number(
    value: object, name: str, low: float, high: float, *, integer: bool = False
) -> int | float:
    """``value`` if it is a finite number (a whole one when ``integer``) in [low, high].

    JSON values only: a string, ``true`` or ``null`` is refused (see :func:`number_text`).
    """
    kind = "a whole number" if integer else "a number"
    # bool is an int to Python, never a number to a client.
    wrong = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wrong):
        raise errors.BadRequest(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise errors.BadRequest(f"{name} must be {_bounds(low, high)}, got {value!r}")
    return value


def number_text(
    text: str, name: str, low: float, high: float, *, integer: bool = False
) -> int | float:
    """The number written in ``text`` (a query argument, a command-line option), checked as
    :func:`number` checks it."""
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise errors.BadRequest(f"{name} must be {kind}, got {text!r}") from None
    return number(value, name, low, high, integer=integer)


def _bounds(low: float, high: float) -> str:
    if high == math.inf:
        return f"at least {low:g}"
    return f"between {low:g} and {high:g}"

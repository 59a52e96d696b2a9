"""Room mode's addresses: the two URLs a presenter hands out, and the audience URL as a QR
code (segno: a maintained encoder, no hand-written QR code) for the terminal and the page."""

from __future__ import annotations

import io

import segno

from . import access


def public_host(bind_host: str) -> str:
    """The address laptops in the room can use: the one bound to, or, when bound to every
    interface, this machine's LAN address (never 0.0.0.0)."""
    host = bind_host.strip("[]")
    if host not in ("0.0.0.0", "::", ""):
        return host
    return access.lan_address() or "127.0.0.1"


def urls(bind_host: str, port: int, token: str) -> dict[str, str]:
    host = public_host(bind_host)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/"
    return {"presenter": f"{base}?token={token}", "audience": base}


def qr_text(url: str) -> str:
    """The QR code as terminal text (two modules a character)."""
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def qr_svg(url: str) -> str:
    """The QR code as an inline SVG element, black on white, sized by the page."""
    return segno.make(url, error="m").svg_inline(scale=10, dark="#000", light="#fff")

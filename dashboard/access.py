"""Who may reach memdash, and as whom: the one door every request passes through.

memdash starts processes and shows every process's command line, so it answers only to the
names this machine has (a DNS-rebinding page elsewhere cannot reach it by pointing its own
name at 127.0.0.1) and only to pages it served itself (Origin). :class:`AccessGuard` is a WSGI
middleware wrapped around the *whole* app, Socket.IO handshake included: Flask's
``before_request`` never sees ``/socket.io/``.

Roles: on loopback without ``--share`` everyone is the presenter (one person, one laptop).
Any other bind has a presenter token, random per start; whoever opens the presenter link
once gets an HttpOnly, SameSite=Strict cookie for it, everyone else is audience (read-only).
Which endpoints the audience may use is decided in one place, :func:`audience_ok`, and
everything not marked so is presenter-only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import psutil

from . import errors

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
COOKIE = "memdash_presenter"
PRESENTER, AUDIENCE = "presenter", "audience"
ROLE_KEY = "memdash.role"  # where the guard leaves the role in the WSGI environ


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def machine_addresses() -> list[str]:
    """Every address of this machine's interfaces that are up (IPv4 first)."""
    up = {name for name, stats in psutil.net_if_stats().items() if stats.isup}
    found: list[str] = []
    for name, addrs in psutil.net_if_addrs().items():
        if name not in up:
            continue
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                found.append(addr.address.split("%")[0])  # drop an IPv6 zone (fe80::1%eth0)
    return sorted(set(found), key=lambda a: (":" in a, a))


def lan_address() -> str | None:
    """The address a laptop in the same room would use: the first IPv4 address that is not
    loopback or link-local (None when the machine has no network at all)."""
    for address in machine_addresses():
        ip = ipaddress.ip_address(address)
        if ip.version == 4 and not ip.is_loopback and not ip.is_link_local:
            return address
    return None


def machine_names() -> set[str]:
    """The names and addresses by which this machine can be asked for."""
    names = set(LOOPBACK_NAMES) | set(machine_addresses())
    hostname = socket.gethostname()
    if hostname:
        names |= {hostname, f"{hostname}.local", socket.getfqdn(hostname)}
    return {n.lower() for n in names if n}


def hostname_of(host_header: str) -> str:
    """The name part of a Host or Origin authority, lower-case, without port or brackets."""
    try:
        return (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:  # e.g. an unterminated IPv6 bracket
        return ""


_SECRET_FLAG = re.compile(
    r"^(--?[\w.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|key|auth|credential)s?[\w.-]*)"
    r"(=(.*))?$",
    re.IGNORECASE,
)
_SECRET_ENV = re.compile(r"^([A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|AUTH))=(.+)$")
MASK = "••••"


def mask_cmdline(cmdline: str | None) -> str | None:
    """A command line (arguments joined by spaces, as memdash shows it) with the values of
    secret-looking options masked: ``--api-token=abc`` → ``--api-token=••••``,
    ``--password abc`` → ``--password ••••``, ``DB_PASSWORD=abc`` → ``DB_PASSWORD=••••``."""
    if cmdline is None:
        return None
    return " ".join(mask_args(cmdline.split(" ")))


def mask_args(args: Iterable[str]) -> list[str]:
    """:func:`mask_cmdline` for a list of arguments."""
    out: list[str] = []
    mask_next = False
    for arg in args:
        if mask_next and not arg.startswith("-"):
            out.append(MASK)
            mask_next = False
            continue
        mask_next = False
        flag = _SECRET_FLAG.match(arg)
        env = _SECRET_ENV.match(arg)
        if flag and flag.group(2):
            out.append(f"{flag.group(1)}={MASK}")
        elif flag:
            out.append(arg)
            mask_next = True
        elif env:
            out.append(f"{env.group(1)}={MASK}")
        else:
            out.append(arg)
    return out


@dataclass
class Access:
    """The access policy of one server: the names it answers to and the presenter token.

    ``token`` None means everyone is the presenter (loopback without --share)."""

    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    token: str | None = None
    port: int | None = None  # the bound port, once known: origins must carry it
    scheme: str = "http"
    _audience_endpoints: set[str] = field(default_factory=set)

    @classmethod
    def for_bind(cls, host: str, share: bool, port: int | None = None) -> Access:
        """Loopback binds answer to loopback names; any other bind (or ``--share``) answers
        to this machine's own names and addresses and turns the presenter token on."""
        if is_loopback(host) and not share:
            return cls(allowed_hosts=LOOPBACK_NAMES | {host.strip("[]").lower()}, port=port)
        names = machine_names() | {host.strip("[]").lower()}
        names.discard("0.0.0.0")
        names.discard("::")
        return cls(allowed_hosts=frozenset(names), token=new_token(), port=port)

    @property
    def shared(self) -> bool:
        return self.token is not None

    def host_ok(self, host_header: str) -> bool:
        return hostname_of(host_header) in self.allowed_hosts

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (a non-browser client, a same-origin GET) is fine; a browser's Origin
        must be one of the pages this server serves: our scheme, one of our names, our port."""
        if not origin:
            return True
        try:
            parts = urlsplit(origin)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        if parts.scheme != self.scheme or (parts.hostname or "").lower() not in self.allowed_hosts:
            return False
        return self.port is None or port == self.port

    def token_ok(self, candidate: str | None) -> bool:
        if self.token is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def role(self, cookie_header: str | None) -> str:
        if self.token is None:
            return PRESENTER
        cookie = SimpleCookie()
        try:
            cookie.load(cookie_header or "")
        except Exception:  # a malformed Cookie header is no presenter's
            return AUDIENCE
        morsel = cookie.get(COOKIE)
        return PRESENTER if morsel is not None and self.token_ok(morsel.value) else AUDIENCE


def new_token() -> str:
    return secrets.token_urlsafe(18)


def audience_ok(view: Callable) -> Callable:
    """Mark a Flask view as readable by the audience. Everything else is presenter-only."""
    view.memdash_audience_ok = True
    return view


def _deny(start_response, status: int, error: errors.MemdashError) -> list[bytes]:
    body = json.dumps(error.body()).encode()
    reason = {400: "BAD REQUEST", 403: "FORBIDDEN", 429: "TOO MANY REQUESTS"}.get(status, "ERROR")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class AccessGuard:
    """WSGI middleware: Host and Origin on every request (HTTP and Socket.IO alike), the
    presenter token exchanged for a cookie, and the role left in ``environ[ROLE_KEY]``."""

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access

    def __call__(self, environ, start_response):
        access = self.access
        host = environ.get("HTTP_HOST", "")
        if not access.host_ok(host):
            refused = errors.BadHost(
                f"memdash does not answer to host {hostname_of(host)!r}; open it by this "
                "machine's own address (http://127.0.0.1 on this machine)"
            )
            return _deny(start_response, 403, refused)
        origin = environ.get("HTTP_ORIGIN")
        if not access.origin_ok(origin):
            refused = errors.BadOrigin(
                f"a page from {origin!r} may not use memdash; open memdash's own page instead"
            )
            return _deny(start_response, 403, refused)
        environ[ROLE_KEY] = access.role(environ.get("HTTP_COOKIE"))
        token = parse_qs(environ.get("QUERY_STRING", "")).get("token")
        if token is None:
            return self.app(environ, start_response)
        if not access.token_ok(token[0]):
            refused = errors.BadToken(
                "this presenter link is not valid for this start of memdash (mistyped, or "
                "from an earlier start); use the presenter link memdash printed last"
            )
            return _deny(start_response, 403, refused)
        environ[ROLE_KEY] = PRESENTER
        cookie = f"{COOKIE}={access.token}; Path=/; HttpOnly; SameSite=Strict" + (
            "; Secure" if access.scheme == "https" else ""
        )

        def with_cookie(status, headers, exc_info=None):
            return start_response(status, [*headers, ("Set-Cookie", cookie)], exc_info)

        return self.app(environ, with_cookie)

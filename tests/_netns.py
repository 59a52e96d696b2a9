"""A private network namespace for tests that need a real, non-loopback address.

Room-mode tests must bind memdash to an address other than loopback and call it from
clients, but test traffic may only go to loopback or to an address the test made itself.
As root, this makes a fresh namespace (what ``unshare -n`` gives a process, kept under a name
with ``ip netns`` so several processes can enter it), gives it a veth pair holding an address
from 198.18.0.0/15 (the benchmarking range) and a default route through it, and runs
commands inside with ``ip netns exec``. Nothing leaves the namespace: the veth's peer end is
inside it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

ADDRESS = "198.18.0.1"
GATEWAY = "198.18.0.2"


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    return None


class NetNamespace:
    """``with NetNamespace() as ns: ns.popen([...])`` — removed again on exit."""

    def __init__(self):
        self.name = f"memdash-test-{uuid.uuid4().hex[:8]}"
        self.address = ADDRESS

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def __enter__(self) -> NetNamespace:
        self._ip("netns", "add", self.name)
        try:
            self._ip("-n", self.name, "link", "set", "lo", "up")
            self._ip("-n", self.name, "link", "add", "md0", "type", "veth", "peer", "name", "md1")
            self._ip("-n", self.name, "addr", "add", f"{ADDRESS}/24", "dev", "md0")
            self._ip("-n", self.name, "link", "set", "md0", "up")
            self._ip("-n", self.name, "link", "set", "md1", "up")
            self._ip("-n", self.name, "route", "add", "default", "via", GATEWAY, "dev", "md0")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        # Deleting the namespace also deletes the veth pair inside it.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), **kwargs)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), **kwargs)

    def wrapper(self, executable: str, directory: Path) -> str:
        """A script that runs ``executable`` inside the namespace, for tools that take an
        executable path (Playwright's ``executable_path`` for Chromium)."""
        script = directory / f"in-{self.name}-{Path(executable).name}"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {executable} "$@"\n')
        script.chmod(0o755)
        return str(script)

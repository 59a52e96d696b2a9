"""``memdash --share`` inside a private network namespace (tests/_netns.py), for the room-mode
tests (tests/test_room.py over HTTP and Socket.IO, tests/test_room_browser.py in Chromium)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile

from dashboard.testing import ROOT, wait_for
from tests._netns import NetNamespace


class SharedServer:
    """``memdash --share`` inside the namespace; its printed presenter and audience URLs."""

    def __init__(self, ns: NetNamespace, *extra: str):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-share-", suffix=".txt")
        argv = [sys.executable, "-m", "dashboard", "--share", "--no-browser", "--port", "0"]
        self.proc = ns.popen([*argv, *extra], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        found = wait_for(
            lambda: re.search(r"presenter: (\S+)\naudience:  (\S+)", self.output()),
            timeout=20,
            message="memdash --share to print its URLs",
        )
        self.presenter, self.audience = found.group(1), found.group(2)
        self.token = self.presenter.split("token=")[1]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

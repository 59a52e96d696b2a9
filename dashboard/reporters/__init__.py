"""Language-heap reporters for any Node or Python program, and the receiver of their reports.

    receiver = Receiver(sampler.add_extra).start()      # callback(pid, fields), own thread
    env = child_env(receiver.path, tracemalloc=False)   # for subprocess.Popen(..., env=env)
    ...
    receiver.pids_reporting()   # the PIDs that have a language heap; others: "no language heap"
    receiver.stop()

``node_reporter.cjs`` is loaded into every node process of the run through NODE_OPTIONS
(``--require``), ``python/sitecustomize.py`` into every Python process through PYTHONPATH; each
process sends one JSON line a second over its own connection to the receiver's Unix socket.
The wire field names are ``wire.FIELDS``.
"""

from dashboard.reporters.env import child_env
from dashboard.reporters.receiver import Receiver
from dashboard.reporters.wire import FIELDS

__all__ = ["FIELDS", "Receiver", "child_env"]

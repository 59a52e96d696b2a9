"""A Python program that grows its heap when told to, for tests of `memdash run --tracemalloc`.

Each stdin line "grow N" holds N more MiB of strings, collects garbage and prints its own
figures (tracemalloc's traced current memory: what memdash reports as heap_used) as one JSON
line; "exit N" exits with code N. Between commands it holds still.
"""

import gc
import json
import os
import sys
import tracemalloc

held = []
print(json.dumps({"ready": os.getpid(), "tracing": tracemalloc.is_tracing()}), flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "exit":
        sys.exit(int(arg))
    if cmd == "grow":
        held.extend(str(i) * 1000 for i in range(int(arg) * 1024))  # ~1 KiB strings: THE LEAK
    gc.collect()
    current = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    print(json.dumps({"heap_used": current, "py_blocks": sys.getallocatedblocks()}), flush=True)

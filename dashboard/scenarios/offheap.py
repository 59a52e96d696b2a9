"""Off-heap memory: RSS grows while the language heap stays flat ("heap < rss").

Anonymous mmap chunks are not Python objects: tracemalloc sees a tiny mmap object, the
kernel sees every page we touch. Node's Buffers behave the same way (memoryUsage().external).
Run: python -m dashboard.scenarios.offheap --variant leaky|fixed [--rate 6 --item-kb 256]
"""

import mmap

from dashboard.scenarios._worker import Work, run

PAGE = mmap.PAGESIZE


def new_chunk(size):
    chunk = mmap.mmap(-1, size)  # anonymous memory, outside the Python heap
    for offset in range(0, size, PAGE):
        chunk[offset] = 1  # touch every page: only touched pages count in RSS
    return chunk


# region leaky
# Keep every chunk, e.g. "receive buffers" appended to a list nobody trims.
# tracemalloc (the heap line) barely moves; RSS climbs by item_kb per item.
chunks = []


def handle_leaky(item_kb):
    chunks.append(new_chunk(item_kb * 1024))


# endregion


# region fixed
# A bounded pool: keep at most max_items chunks and close (munmap) the oldest.
# Closing returns the pages to the kernel at once; dropping the last
# reference would too, but close() says it explicitly.
pool = []


def handle_fixed(item_kb, max_items):
    pool.append(new_chunk(item_kb * 1024))
    while len(pool) > max_items:
        pool.pop(0).close()


# endregion


def make(args):
    if args.variant == "leaky":
        return Work(lambda i: handle_leaky(args.item_kb), args.rate, external=held(chunks))
    return Work(
        lambda i: handle_fixed(args.item_kb, args.max_items), args.rate, external=held(pool)
    )


def held(lst):
    return lambda: sum(len(c) for c in lst if not c.closed)


if __name__ == "__main__":
    run("offheap", make, doc=__doc__)

"""Slow consumer: a queue filled faster than it is drained, vs one that drops the oldest.

The seed's Queue with Push/Pop grows without end when Push is called more often than Pop;
its fix, Shuff(), cuts the queue back when it passes MAXLEN.
Run: python -m dashboard.scenarios.slow_consumer --variant leaky|fixed
"""

import os
from collections import deque

from dashboard.scenarios._worker import Work, run


# region leaky
# Producer pushes `rate` jobs a second, the consumer only manages
# `consumer_rate`. The difference piles up in the queue, forever.
class Queue:
    def __init__(self):
        self.items = deque()

    def push(self, job):
        self.items.append(job)

    def pop(self):
        return self.items.popleft() if self.items else None


# endregion


# region fixed
# Same producer, same consumer, but past max_len the oldest jobs are dropped
# (the seed's Shuff). Losing jobs is a choice: the alternative is back-pressure,
# i.e. make the producer wait (a bounded queue.Queue(maxsize) blocks on put),
# or move the queue out of the process (Redis LPUSH/RPOP).
# (collections.deque(maxlen=N) does this trimming by itself.)
class BoundedQueue:
    def __init__(self, max_len):
        self.items = deque()
        self.max_len = max_len
        self.dropped = 0

    def push(self, job):
        self.items.append(job)

    def pop(self):
        job = self.items.popleft() if self.items else None
        self.shuff()
        return job

    def shuff(self):
        while len(self.items) > self.max_len:
            self.items.popleft()  # the oldest job is the least useful one
            self.dropped += 1


# endregion


def make(args):
    queue = Queue() if args.variant == "leaky" else BoundedQueue(args.max_len)

    def step(i):
        queue.push(os.urandom(args.item_kb * 1024))  # producer: every item
        # consumer: pops consumer_rate of every `rate` items
        if int((i + 1) * args.consumer_rate / args.rate) > int(i * args.consumer_rate / args.rate):
            queue.pop()

    return Work(step, args.rate)


if __name__ == "__main__":
    run("slow_consumer", make, doc=__doc__)

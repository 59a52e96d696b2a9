'use strict';
// Slow consumer: a queue filled faster than it is drained, vs one that drops the oldest.
// The seed's Queue (Push/Pop) grows without end when Push runs more often than Pop;
// its fix, Shuff(), cuts the queue back when it passes MAXLEN.
// Run: node dashboard/scenarios/node/slow_consumer.js --variant leaky|fixed
const { run, payload } = require('./_worker');

// region leaky
// The producer pushes `rate` jobs a second, the consumer only manages
// `consumer-rate`. The difference piles up in the queue, forever.
class Queue {
  constructor() {
    this.items = [];
    this.top = 0; // index of the next job to pop (shifting a big array is slow)
  }

  push(job) {
    this.items.push(job);
  }

  pop() {
    if (this.top >= this.items.length) return null;
    const job = this.items[this.top];
    this.items[this.top++] = undefined; // popped jobs are released ...
    if (this.top > 1024 && this.top * 2 > this.items.length) {
      this.items = this.items.slice(this.top); // ... and the array compacted now and then
      this.top = 0;
    }
    return job;
  }

  get length() {
    return this.items.length - this.top;
  }
}
// endregion

// region fixed
// Same producer, same consumer, but past maxLen the oldest jobs are dropped
// (the seed's Shuff, called after each Pop). Losing jobs is a choice: the
// alternative is back-pressure, i.e. make the producer wait (pause the stream,
// `await` before pushing), or move the queue out of the process (Redis LPUSH/RPOP).
class BoundedQueue extends Queue {
  constructor(maxLen) {
    super();
    this.maxLen = maxLen;
    this.dropped = 0;
  }

  pop() {
    const job = super.pop();
    this.shuff();
    return job;
  }

  shuff() {
    if (this.length > this.maxLen) {
      this.dropped += this.length - this.maxLen;
      this.items = this.items.slice(this.items.length - this.maxLen); // keep the newest
      this.top = 0;
    }
  }
}
// endregion

run({
  scenario: 'slow_consumer',
  make(args) {
    const queue = args.variant === 'leaky' ? new Queue() : new BoundedQueue(args.maxLen);
    const ratio = args.consumerRate / args.rate;
    return {
      rate: args.rate,
      step(i) {
        queue.push(payload(args.itemKb)); // producer: every item
        if (Math.floor((i + 1) * ratio) > Math.floor(i * ratio)) queue.pop(); // consumer
      },
    };
  },
});

'use strict';
// Unbounded cache: a Map keyed by request id that only grows, vs an LRU with a size and a TTL.
// Run: node dashboard/scenarios/node/unbounded_cache.js --variant leaky|fixed [--rate 200 --item-kb 8]
const { run, payload } = require('./_worker');

// region leaky
// "Cache the rendered response so the next identical request is free."
// But every request has a new id, so nearly every entry is a miss that is
// stored forever: the Map grows by one response per request until the process dies.
const cache = new Map();

function handleLeaky(requestId, itemKb) {
  if (!cache.has(requestId)) cache.set(requestId, payload(itemKb)); // the "rendered response"
  return cache.get(requestId);
}
// endregion

// region fixed
// At most maxItems entries, each kept at most ttl seconds. A Map iterates in
// insertion order, so re-inserting on use keeps the least recently used first.
class LRUCache {
  constructor(maxItems, ttl) {
    this.maxItems = maxItems;
    this.ttlMs = ttl * 1000;
    this.data = new Map(); // key -> {expiresAt, value}
  }

  get(key) {
    const hit = this.data.get(key);
    if (!hit) return undefined;
    this.data.delete(key); // expired: gone; otherwise re-inserted as most recent below
    if (hit.expiresAt < Date.now()) return undefined;
    this.data.set(key, hit);
    return hit.value;
  }

  set(key, value) {
    this.data.delete(key);
    this.data.set(key, { expiresAt: Date.now() + this.ttlMs, value });
    while (this.data.size > this.maxItems) {
      this.data.delete(this.data.keys().next().value); // evict the least recently used
    }
  }
}

function handleFixed(lru, requestId, itemKb) {
  let value = lru.get(requestId);
  if (value === undefined) {
    value = payload(itemKb);
    lru.set(requestId, value);
  }
  return value;
}
// endregion

run({
  scenario: 'unbounded_cache',
  make(args) {
    if (args.variant === 'leaky') {
      return { rate: args.rate, step: (i) => handleLeaky(`req-${i}`, args.itemKb) };
    }
    const lru = new LRUCache(args.maxItems, args.ttl);
    return { rate: args.rate, step: (i) => handleFixed(lru, `req-${i}`, args.itemKb) };
  },
});

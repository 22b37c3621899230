/**
 * TimelineCache keeps each reader's first timeline page (the JSON body, per page size) for a
 * short TTL. It is a cache, never a source of truth: every failure (Redis down, slow, refusing)
 * is a miss, and the page is read from Postgres.
 *
 * Invalidation races are closed with a generation per reader: `lookup` answers a miss together
 * with the reader's generation (creating the entry if there is none), `store` writes the page only
 * if the generation is still the same, and `invalidate` bumps it. A read that began before a
 * fan-out committed (and so read the old timeline) therefore cannot store its page after the
 * fan-out's invalidation: its generation is gone. `invalidate` only touches readers with an entry,
 * so fanning a post out to 10,000 followers costs nothing for those who are not reading.
 */
export interface TimelineCache {
  readonly kind: "redis" | "memory";
  /**
   * lookup returns the cached page (JSON text, or its UTF-8 bytes as Redis sent them), or a miss
   * with the generation `store` must be given: at once when this process holds the answer (the
   * memory cache, a local copy of a Redis page), else as a promise.
   */
  lookup(userId: string, limit: number): LookupResult | Promise<LookupResult>;
  /** store caches `body` as `userId`'s first page of `limit` items, unless invalidated since `generation`. */
  store(userId: string, limit: number, generation: string | null, body: string): Promise<void>;
  /** invalidate drops the cached pages of `userIds` (those who have any). */
  invalidate(userIds: readonly string[]): Promise<void>;
  /** close releases what the cache holds besides its client (the Redis cache's invalidation connection). */
  close?(): void;
}

/** LookupResult is a cache lookup's answer: the page, or a miss with the generation to store under. */
export type LookupResult = { hit: string | Uint8Array } | { miss: string | null };

/** PREFIX starts every key of the Redis cache: one hash per reader (`redis-cache.ts`, tracked by `local-copies.ts`). */
export const PREFIX = "timeline:";

export interface TimelineCacheOptions {
  ttlSeconds: number;
  /** After a failed command, Redis is left alone this long (default 1,000 ms): a hanging Redis costs one timeout, not one per request. */
  coolOffMs?: number;
  /** Reports a failure that was turned into a miss (logged, so an outage is visible). */
  onError?: (err: unknown, op: string) => void;
  /**
   * Redis only: readers whose pages this process also keeps in memory (default 0: none). The copies
   * are kept coherent by Redis client-side caching (see `localCopies`), so a hit on one costs no
   * round trip at all.
   */
  localEntries?: number;
}

/**
 * createMemoryTimelineCache caches in this process only (the default without REDIS_URL): right
 * for one process serving both roles; with separate API and worker processes the worker's
 * invalidations do not reach the API's memory, and pages are only as fresh as the TTL.
 * At most `maxEntries` readers are kept (the oldest entry goes first). Pages are kept as their
 * UTF-8 bytes, encoded once when stored, so a hit is answered without encoding 7 KB of text again.
 */
export function createMemoryTimelineCache(opts: TimelineCacheOptions & { maxEntries?: number }): TimelineCache {
  const max = opts.maxEntries ?? 10_000;
  const ttlMs = opts.ttlSeconds * 1000;
  const entries = new Map<string, { gen: number; expiresAt: number; pages: Map<number, Uint8Array> }>();
  const live = (userId: string) => {
    const e = entries.get(userId);
    if (e && e.expiresAt <= Date.now()) {
      entries.delete(userId);
      return undefined;
    }
    return e;
  };
  return {
    kind: "memory",
    lookup(userId, limit) {
      let e = live(userId);
      const page = e?.pages.get(limit);
      if (page !== undefined) return { hit: page };
      if (!e) {
        if (entries.size >= max) entries.delete(entries.keys().next().value!);
        e = { gen: 0, expiresAt: Date.now() + ttlMs, pages: new Map() };
        entries.set(userId, e);
      }
      return { miss: String(e.gen) };
    },
    async store(userId, limit, generation, body) {
      const e = live(userId);
      if (e && generation !== null && String(e.gen) === generation) e.pages.set(limit, Buffer.from(body, "utf8"));
    },
    async invalidate(userIds) {
      for (const u of userIds) {
        const e = live(u);
        if (e) {
          e.gen++;
          e.pages.clear();
        }
      }
    },
  };
}

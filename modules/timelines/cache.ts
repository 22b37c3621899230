import type { Redis } from "ioredis";

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
  /** lookup returns the cached page (JSON text, or its UTF-8 bytes as Redis sent them), or a miss with the generation `store` must be given. */
  lookup(userId: string, limit: number): Promise<{ hit: string | Uint8Array } | { miss: string | null }>;
  /** store caches `body` as `userId`'s first page of `limit` items, unless invalidated since `generation`. */
  store(userId: string, limit: number, generation: string | null, body: string): Promise<void>;
  /** invalidate drops the cached pages of `userIds` (those who have any). */
  invalidate(userIds: readonly string[]): Promise<void>;
  /** close releases what the cache holds besides its client (the Redis cache's invalidation connection). */
  close?(): void;
}

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

const PREFIX = "timeline:";
const GEN = "gen";

// KEYS[1] the reader's hash; ARGV[1] the page field, ARGV[2] the TTL in ms. A miss reserves the
// entry (generation 0) with the TTL, so an invalidation that runs before the page is stored sees it.
const LOOKUP = `
local page = redis.call('HGET', KEYS[1], ARGV[1])
if page then return {1, page, redis.call('PTTL', KEYS[1])} end
redis.call('HSETNX', KEYS[1], '${GEN}', '0')
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {0, redis.call('HGET', KEYS[1], '${GEN}')}`;

// KEYS[1] the reader's hash; ARGV[1] page field, ARGV[2] generation seen at lookup, ARGV[3] body.
// The entry keeps the TTL set when it was created: a page is never older than one TTL.
const STORE = `
if redis.call('HGET', KEYS[1], '${GEN}') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;

// KEYS: readers' hashes. Only existing entries are bumped; their pages go.
const INVALIDATE = `
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    local fields = redis.call('HKEYS', k)
    for _, f in ipairs(fields) do if f ~= '${GEN}' then redis.call('HDEL', k, f) end end
    redis.call('HINCRBY', k, '${GEN}', 1)
  end
end
return 0`;

// Keys per INVALIDATE call: one fan-out to many followers goes out as a few pipelined scripts.
const INVALIDATE_CHUNK = 500;
// Readers whose invalidation is remembered through an outage; beyond, all pages are dropped on recovery.
const MAX_OWED = 100_000;

type Scripts = {
  // The Buffer variant ioredis defines for every script: the page goes out as the bytes it came in as.
  timelineLookupBuffer(key: string, field: string, ttlMs: number): Promise<[0 | 1, Buffer | null, number?]>;
  timelineStore(key: string, field: string, generation: string, body: string): Promise<number>;
  timelineInvalidate(numberOfKeys: number, ...keys: string[]): Promise<number>;
};

/**
 * createRedisTimelineCache caches in Redis, shared by every replica. Give it a client built for
 * fast failure (no offline queue, short connect and command timeouts): while the client is not
 * connected, and for `coolOffMs` after a command failed or timed out, no command is even tried,
 * so a Redis outage costs a request nothing but the cache.
 */
export function createRedisTimelineCache(redis: Redis, opts: TimelineCacheOptions): TimelineCache {
  redis.defineCommand("timelineLookup", { numberOfKeys: 1, lua: LOOKUP });
  redis.defineCommand("timelineStore", { numberOfKeys: 1, lua: STORE });
  redis.defineCommand("timelineInvalidate", { lua: INVALIDATE });
  const r = redis as unknown as Scripts;
  const ttlMs = opts.ttlSeconds * 1000;
  const coolOffMs = opts.coolOffMs ?? 1000;
  let skipUntil = 0;
  const local = opts.localEntries ? localCopies(redis, opts.localEntries, (err) => opts.onError?.(err, "track")) : undefined;
  const report = (err: unknown, op: string) => {
    skipUntil = Date.now() + coolOffMs;
    // What this process copied may have missed invalidations: start over with fresh tracking.
    local?.reset();
    opts.onError?.(err, op);
  };
  const ready = () => redis.status === "ready" && Date.now() >= skipUntil;
  const owed = new Set<string>();
  let owedAll = false;
  redis.on("ready", () => void payOwed());
  // A hang ends without a reconnect: pay when the cool-off is over and a command succeeds.
  const retry = setInterval(() => {
    if (ready()) void payOwed();
  }, coolOffMs);
  retry.unref?.();
  return {
    kind: "redis",
    async lookup(userId, limit) {
      if (!ready()) return { miss: null };
      const copy = local?.get(userId, limit);
      if (copy !== undefined) return { hit: copy };
      const ticket = local?.begin(userId);
      try {
        const [hit, value, pttl] = await r.timelineLookupBuffer(PREFIX + userId, String(limit), ttlMs);
        if (hit !== 1) return { miss: value?.toString() ?? null };
        if (ticket) local!.keep(ticket, limit, value!, pttl ?? 0);
        return { hit: value! };
      } catch (err) {
        report(err, "lookup");
        return { miss: null };
      } finally {
        if (ticket) local!.end(ticket);
      }
    },
    async store(userId, limit, generation, body) {
      // No generation: the lookup failed, so the entry's state is unknown; do not store.
      if (generation === null || !ready()) return;
      try {
        await r.timelineStore(PREFIX + userId, String(limit), generation, body);
      } catch (err) {
        report(err, "store");
      }
    },
    async invalidate(userIds) {
      if (userIds.length === 0) return;
      // This process's copies go at once, and again once Redis has the invalidation: a copy made
      // meanwhile from the old page is dropped, so a read here after `invalidate` never sees it
      // (Redis's own message on the tracking connection may come a moment later).
      local?.drop(userIds);
      if (!ready()) return owe(userIds);
      try {
        await invalidateNow(userIds);
      } catch (err) {
        report(err, "invalidate");
        owe(userIds);
      } finally {
        local?.drop(userIds);
      }
    },
    close() {
      clearInterval(retry);
      local?.close();
    },
  };

  async function invalidateNow(userIds: Iterable<string>): Promise<void> {
    const keys = [...new Set(userIds)].map((u) => PREFIX + u);
    const calls: Promise<number>[] = [];
    for (let i = 0; i < keys.length; i += INVALIDATE_CHUNK) {
      const chunk = keys.slice(i, i + INVALIDATE_CHUNK);
      calls.push(r.timelineInvalidate(chunk.length, ...chunk));
    }
    await Promise.all(calls);
  }

  // Invalidations that could not reach Redis are owed: paid as soon as it answers again, so a page
  // cached before an outage is not served for the rest of its TTL after it. Past MAX_OWED readers,
  // every cached timeline is dropped instead.
  function owe(userIds: readonly string[]): void {
    if (owedAll) return;
    for (const u of userIds) owed.add(u);
    if (owed.size > MAX_OWED) {
      owedAll = true;
      owed.clear();
    }
  }
  async function payOwed(): Promise<void> {
    if (!owedAll && owed.size === 0) return;
    const all = owedAll;
    const users = [...owed];
    owed.clear();
    owedAll = false;
    try {
      if (all) {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
          if (keys.length) await r.timelineInvalidate(keys.length, ...keys);
          cursor = next;
        } while (cursor !== "0");
      } else {
        await invalidateNow(users);
      }
    } catch (err) {
      report(err, "invalidate");
      if (all) owedAll = true;
      else owe(users);
    }
  }
}

const INVALIDATIONS = "__redis__:invalidate";
// The tracking connection is pinged this often; copies are served only while a PING sent within FRESH_MS has been answered.
const BEAT_MS = 250;
const FRESH_MS = 1000;

/** A read of Redis under way for one reader: its copy is kept only if no invalidation of the reader came meanwhile. */
interface Ticket {
  userId: string;
  epoch: number;
  /** The reader's invalidation count when the read began. */
  seen: number;
  state: { reads: number; invalidations: number };
}

/**
 * localCopies keeps, in this process, the pages it was served from Redis (up to `max` readers,
 * the oldest first out), coherent with Redis by client-side caching: a connection of its own
 * (RESP2, as ioredis does not surface RESP3 invalidation pushes) runs
 * `CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX timeline:` and subscribes to
 * `__redis__:invalidate`, so every change to any `timeline:` key, by any client or process
 * (fan-out, store, another replica, expiry, FLUSHDB), drops this process's copies of that reader.
 *
 * Copies are kept only while that connection is tracking: when it closes, fails, or its setup
 * fails, every copy goes and none is kept until tracking is set up again (an invalidation could
 * have been missed meanwhile). A page read from Redis races the invalidation message on the other
 * connection (a write right after the read can be announced before the read's reply is handled),
 * so reads under way are marked when their reader is invalidated, and a marked read keeps no copy.
 * A copy lives no longer than the Redis entry's remaining TTL. A PING every 250 ms on the tracking
 * connection bounds how far behind it can be: copies are served only while a PING sent within the
 * last second has been answered (its answer comes after every invalidation sent before it).
 */
function localCopies(redis: Redis, max: number, onError: (err: unknown) => void) {
  // Redis answers a PING on the tracking connection after every invalidation it sent there before
  // it: when the PING sent at `confirmedAt` is answered, every change made before that moment has
  // been applied here. Copies are served only while that is recent, so a connection that hangs
  // silently (no close, no error) leaves copies stale by at most FRESH_MS before they are skipped.
  let confirmedAt = Number.NEGATIVE_INFINITY;
  const heartbeat = setInterval(() => {
    if (!tracking) return;
    const sentAt = performance.now();
    const at = epoch;
    sub.ping().then(
      () => {
        if (at === epoch && sentAt > confirmedAt) confirmedAt = sentAt;
      },
      (err) => {
        onError(err);
        if (at === epoch) reset();
      },
    );
  }, BEAT_MS);
  heartbeat.unref?.();
  const copies = new Map<string, Map<number, { body: Buffer; expiresAt: number }>>();
  const reading = new Map<string, Ticket["state"]>();
  let tracking = false;
  let epoch = 0;
  let closed = false;
  const sub = redis.duplicate({ protocol: 2, autoResubscribe: false, lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
  const forgetAll = () => {
    epoch++;
    confirmedAt = Number.NEGATIVE_INFINITY;
    copies.clear();
  };
  const dropOne = (userId: string) => {
    copies.delete(userId);
    const state = reading.get(userId);
    if (state) state.invalidations++;
  };
  sub.on("error", onError);
  sub.on("close", () => {
    tracking = false;
    forgetAll();
  });
  sub.on("ready", async () => {
    forgetAll();
    try {
      const id = await sub.client("ID");
      await sub.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(id), "BCAST", "PREFIX", PREFIX);
      await sub.subscribe(INVALIDATIONS);
      forgetAll();
      const sentAt = performance.now();
      await sub.ping();
      confirmedAt = sentAt;
      tracking = true;
    } catch (err) {
      onError(err);
      if (!closed) sub.disconnect(true);
    }
  });
  sub.on("messageBuffer", (channel: Buffer, message: Buffer[] | Buffer | null) => {
    if (channel.toString() !== INVALIDATIONS) return;
    // A null list means the whole keyspace changed (FLUSHDB, FLUSHALL).
    if (!Array.isArray(message)) return forgetAll();
    for (const key of message) dropOne(key.toString().slice(PREFIX.length));
  });
  sub.connect().catch(onError);
  /** reset forgets every copy and sets tracking up again on a new connection. */
  function reset(): void {
    if (tracking) {
      tracking = false;
      forgetAll();
      sub.disconnect(true);
    }
  }
  return {
    get(userId: string, limit: number): Buffer | undefined {
      if (!tracking || performance.now() - confirmedAt > FRESH_MS) return undefined;
      const page = copies.get(userId)?.get(limit);
      if (page === undefined) return undefined;
      if (page.expiresAt > Date.now()) return page.body;
      copies.get(userId)!.delete(limit);
      return undefined;
    },
    begin(userId: string): Ticket | undefined {
      if (!tracking) return undefined;
      let state = reading.get(userId);
      if (!state) reading.set(userId, (state = { reads: 0, invalidations: 0 }));
      state.reads++;
      return { userId, epoch, seen: state.invalidations, state };
    },
    keep(t: Ticket, limit: number, body: Buffer, ttlMs: number): void {
      // Only a read that began after the reader's last invalidation (and in this tracking epoch) may keep its page.
      if (!tracking || t.epoch !== epoch || t.state.invalidations !== t.seen || ttlMs <= 0) return;
      let pages = copies.get(t.userId);
      if (!pages) {
        if (copies.size >= max) copies.delete(copies.keys().next().value!);
        copies.set(t.userId, (pages = new Map()));
      }
      pages.set(limit, { body, expiresAt: Date.now() + ttlMs });
    },
    end(t: Ticket): void {
      if (--t.state.reads === 0 && reading.get(t.userId) === t.state) reading.delete(t.userId);
    },
    drop(userIds: readonly string[]): void {
      for (const u of userIds) dropOne(u);
    },
    reset,
    close(): void {
      closed = true;
      clearInterval(heartbeat);
      tracking = false;
      forgetAll();
      sub.disconnect();
    },
  };
}

/**
 * createMemoryTimelineCache caches in this process only (the default without REDIS_URL): right
 * for one process serving both roles; with separate API and worker processes the worker's
 * invalidations do not reach the API's memory, and pages are only as fresh as the TTL.
 * At most `maxEntries` readers are kept (the oldest entry goes first).
 */
export function createMemoryTimelineCache(opts: TimelineCacheOptions & { maxEntries?: number }): TimelineCache {
  const max = opts.maxEntries ?? 10_000;
  const ttlMs = opts.ttlSeconds * 1000;
  const entries = new Map<string, { gen: number; expiresAt: number; pages: Map<number, string> }>();
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
    async lookup(userId, limit) {
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
      if (e && generation !== null && String(e.gen) === generation) e.pages.set(limit, body);
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

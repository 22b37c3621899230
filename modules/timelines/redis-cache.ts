import type { Redis } from "ioredis";
import { type LookupResult, PREFIX, type TimelineCache, type TimelineCacheOptions } from "./cache.ts";
import { localCopies } from "./local-copies.ts";

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
    lookup(userId, limit) {
      if (!ready()) return { miss: null };
      const copy = local?.get(userId, limit);
      if (copy !== undefined) return { hit: copy };
      return fromRedis(userId, limit);
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

  /** fromRedis reads a page from Redis (a copy is kept when it may be). */
  async function fromRedis(userId: string, limit: number): Promise<LookupResult> {
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
  }

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

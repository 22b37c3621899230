import type { Redis } from "ioredis";
import type { RateKey, RateLimiter, RateLimitResult } from "./env.ts";
import { createMemoryRateLimiter, type RateLimitOptions, rateResult, tightest } from "./rate-limit.ts";

/** RedisRateLimitOptions tune createRedisRateLimiter. */
export interface RedisRateLimitOptions extends RateLimitOptions {
  /** Hears of each failed command (the hit was counted in process instead). */
  onError?: (err: unknown) => void;
  /**
   * How often hits counted in this process are sent to Redis, in ms (default 50). 0 sends every
   * hit at once, in its request (exact across replicas, one round trip per request).
   */
  syncMs?: number;
}

// Each key's hits (ARGV[i + 1]) are added, and a new counter gets the window (ARGV[1]) as its
// expiry, atomically: a crash cannot leave a counter without one. Every key in one call.
const ADD_HITS = `
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCRBY', key, ARGV[i + 1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[1]); ttl = tonumber(ARGV[1]) end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out`;

const GIVE_BACK = `
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then redis.call('DECR', key) end
end
return 0`;

// A client in these states lost its connection: its commands would wait for a reconnect.
const DISCONNECTED = new Set(["reconnecting", "close", "end"]);

/** What this process knows of one counter. */
interface Counter {
  /** The count Redis last answered (every replica's hits up to then). */
  seen: number;
  /** Hits admitted here and not yet sent; and sent, not yet answered. */
  unsent: number;
  sending: number;
  /** When the window ends, on this clock: the send time plus the TTL Redis answered (never later than Redis's). */
  windowEnd: number;
  /** When the send whose answer set `seen` left. */
  seenAt: number;
}

/**
 * slack is how much of a budget is always counted in Redis hit by hit: the last tenth, at least
 * 10 (so budgets of 10 or less are never counted locally).
 */
export const slack = (max: number) => Math.max(10, Math.ceil(max / 10));

/**
 * createRedisRateLimiter counts in Redis, shared by every replica, without a round trip per request
 * while a caller is far from their limit:
 *
 * - A counter's first hit in a window goes to Redis and waits for the count (one round trip).
 * - After that, while the count this process last saw, plus its own hits since, leaves more than
 *   `slack(max)` of the budget (a tenth, at least 10), a hit is admitted here and sent later: every
 *   `syncMs` (50 ms) the hits counted here go to Redis in one call for all counters, and its answer
 *   (every replica's hits) becomes the count seen. A count seen longer ago than `2 * syncMs` is not
 *   trusted: the next hit goes to Redis.
 * - Within the last `slack` of the budget, and over it, every hit goes to Redis in its request and
 *   is decided on the count Redis answers, exactly as without local counting.
 *
 * The trade-off, precisely: one process alone enforces every budget exactly (it admits locally
 * only what it knows to be below the budget, and `RateLimit-Remaining` counts down one per
 * request). With several replicas, Redis does not yet hold the hits another replica admitted
 * locally and has not sent, so a budget can be overrun by those: at most what the other replicas
 * admitted of that counter locally in the last `3 * syncMs` (their count seen at most `2 * syncMs`
 * old, their hits sent every `syncMs`; 150 ms by default), and only while each saw the counter
 * more than `slack` below its limit. A caller spreading a burst over replicas can so get a few
 * requests past the limit once per window; a steady client over the limit is refused as before.
 * Hits admitted and not yet sent when a process dies (at most `syncMs` of them) are never counted.
 * `syncMs: 0` turns local counting off: one round trip per request, exact across replicas.
 *
 * While Redis is unreachable (the client lost its connection, or for a second after a command
 * failed or timed out) it counts in this process instead, so an outage degrades the limit to one
 * replica's view rather than failing every request; `onError` hears of each failed command.
 */
export function createRedisRateLimiter(redis: Redis, opts: RedisRateLimitOptions): RateLimiter & { flush(): Promise<void> } {
  const prefix = opts.prefix ?? "ratelimit:";
  const windowMs = opts.windowSeconds * 1000;
  const syncMs = opts.syncMs ?? 50;
  const staleMs = 2 * syncMs;
  redis.defineCommand("rateLimitAdd", { lua: ADD_HITS });
  redis.defineCommand("rateLimitGiveBack", { lua: GIVE_BACK });
  const commands = redis as unknown as {
    rateLimitAdd(n: number, ...args: (string | number)[]): Promise<number[]>;
    rateLimitGiveBack(n: number, ...keys: string[]): Promise<number>;
  };
  const fallback = createMemoryRateLimiter(opts);
  const counters = new Map<string, Counter>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastSweep = Date.now();
  // After a failure (a timeout on a Redis that hangs, say) Redis is left alone for a second.
  let skipUntil = 0;
  const unreachable = () => DISCONNECTED.has(redis.status) || Date.now() < skipUntil;
  const failed = (err: unknown) => {
    skipUntil = Date.now() + 1000;
    // What was counted here and not sent is lost with Redis's state: start over when it is back.
    counters.clear();
    opts.onError?.(err);
  };

  /** send adds `hits[i]` to `keys[i]` in Redis and records the answers; it returns them. */
  async function send(keys: string[], hits: number[]): Promise<number[]> {
    const sentAt = Date.now();
    for (let i = 0; i < keys.length; i++) counters.get(keys[i]!)!.sending += hits[i]!;
    try {
      const out = await commands.rateLimitAdd(keys.length, ...keys, windowMs, ...hits);
      for (let i = 0; i < keys.length; i++) {
        const c = counters.get(keys[i]!);
        if (!c) continue;
        c.sending -= hits[i]!;
        const count = out[2 * i]!;
        const end = sentAt + out[2 * i + 1]!;
        // A later window (Redis's counter expired and began again) replaces what was seen; within one, counts only grow.
        if (end > c.windowEnd + 1000 || count > c.seen) c.seen = count;
        c.windowEnd = end;
        c.seenAt = Math.max(c.seenAt, sentAt);
      }
      return out;
    } catch (err) {
      failed(err);
      throw err;
    }
  }

  function schedule(): void {
    // Called on every hit counted here: the timer is made (and unref'd) once per sync.
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush().catch(() => {});
    }, syncMs);
    timer.unref?.();
  }

  /** flush sends every hit counted here and not yet sent, in one call, and forgets ended windows. */
  async function flush(): Promise<void> {
    const now = Date.now();
    const keys: string[] = [];
    const hits: number[] = [];
    for (const [key, c] of counters) {
      if (c.windowEnd <= now) {
        // The window is over: its unsent hits belong to it, not to the next one.
        if (c.sending === 0) counters.delete(key);
        continue;
      }
      if (c.unsent > 0) {
        keys.push(key);
        hits.push(c.unsent);
        c.unsent = 0;
      }
    }
    if (keys.length && !unreachable()) await send(keys, hits);
  }

  /** local admits the hit here when every counter is known, fresh and far from its budget; else undefined. */
  function local(keys: readonly RateKey[], now: number): RateLimitResult | undefined {
    // Each counter is looked up once (a key's name is built and hashed per lookup); `found` is
    // reused, as nothing else runs between its filling and its use.
    found.length = 0;
    for (const k of keys) {
      const c = counters.get(prefix + k.key);
      if (!c || c.windowEnd <= now || now - c.seenAt > staleMs || c.seen + c.sending + c.unsent + 1 > k.max - slack(k.max)) return undefined;
      found.push(c);
    }
    let pick: RateLimitResult | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const c = found[i]!;
      c.unsent++;
      const r = rateResult(k.max, c.seen + c.sending + c.unsent, c.windowEnd - now);
      if (!pick || r.remaining < pick.remaining) pick = r;
    }
    found.length = 0;
    schedule();
    return pick;
  }
  const found: Counter[] = [];

  /** inRequest sends this hit to Redis in its request, with the hits of these counters counted here and not yet sent. */
  async function inRequest(keys: readonly RateKey[], now: number): Promise<RateLimitResult> {
    const names = keys.map((k) => prefix + k.key);
    const hits = names.map((name) => {
      let c = counters.get(name);
      if (c && c.windowEnd <= now && c.sending === 0) counters.delete(name);
      c = counters.get(name);
      if (!c) counters.set(name, (c = { seen: 0, unsent: 0, sending: 0, windowEnd: now + windowMs, seenAt: Number.NEGATIVE_INFINITY }));
      const n = 1 + c.unsent;
      c.unsent = 0;
      return n;
    });
    try {
      const out = await send(names, hits);
      return tightest(keys.map((k, i) => rateResult(k.max, out[2 * i]!, out[2 * i + 1]!)));
    } catch {
      return fallback.hit(keys);
    }
  }

  return {
    kind: "redis",
    max: opts.max,
    ipMax: opts.ipMax ?? opts.max,
    flush,
    hit(keys) {
      if (unreachable()) return fallback.hit(keys);
      const now = Date.now();
      // Counters of ended windows go once per window (callers that never count locally trigger no flush).
      if (now - lastSweep > windowMs) {
        lastSweep = now;
        for (const [key, c] of counters) if (c.windowEnd <= now && c.sending === 0 && c.unsent === 0) counters.delete(key);
      }
      if (syncMs > 0) {
        const admitted = local(keys, now);
        if (admitted) return admitted;
      }
      return inRequest(keys, now);
    },
    async giveBack(keys) {
      if (!keys.length) return;
      if (unreachable()) return fallback.giveBack(keys);
      // The next hit of these counters reads them from Redis again.
      for (const k of keys) counters.delete(prefix + k);
      try {
        await commands.rateLimitGiveBack(keys.length, ...keys.map((k) => prefix + k));
      } catch (err) {
        failed(err);
      }
    },
  };
}

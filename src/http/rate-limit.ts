import type { Context } from "hono";
import type { Redis } from "ioredis";
import { DomainError } from "../errors.ts";
import type { AppEnv, RateLimiter, RateLimitResult } from "./env.ts";

/** RateLimitOptions: at most `max` requests per key in each `windowSeconds` window. */
export interface RateLimitOptions {
  max: number;
  windowSeconds: number;
  prefix?: string;
}

// INCR and the first PEXPIRE happen atomically, so a crash cannot leave a counter with no expiry.
const FIXED_WINDOW = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return { count, ttl }`;

function result(max: number, count: number, ttlMs: number): RateLimitResult {
  return { allowed: count <= max, limit: max, remaining: Math.max(0, max - count), resetSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) };
}

// A client in these states lost its connection: its commands would wait for a reconnect.
const DISCONNECTED = new Set(["reconnecting", "close", "end"]);

/**
 * createRedisRateLimiter counts in Redis with one atomic Lua call per hit, shared by every
 * replica. While Redis is unreachable (the client lost its connection, or for a second after a
 * command failed or timed out) it counts in this process instead, so an outage degrades the
 * limit to one replica's view rather than failing every request; `onError` hears of each
 * failed command.
 */
export function createRedisRateLimiter(redis: Redis, opts: RateLimitOptions & { onError?: (err: unknown) => void }): RateLimiter {
  const prefix = opts.prefix ?? "ratelimit:";
  const windowMs = opts.windowSeconds * 1000;
  redis.defineCommand("rateLimitHit", { numberOfKeys: 1, lua: FIXED_WINDOW });
  const hit = (redis as unknown as { rateLimitHit(key: string, windowMs: number): Promise<[number, number]> }).rateLimitHit.bind(redis);
  const fallback = createMemoryRateLimiter(opts);
  // After a failure (a timeout on a Redis that hangs, say) Redis is left alone for a second.
  let skipUntil = 0;
  return {
    kind: "redis",
    async hit(key) {
      if (DISCONNECTED.has(redis.status) || Date.now() < skipUntil) return fallback.hit(key);
      try {
        const [count, ttl] = await hit(prefix + key, windowMs);
        return result(opts.max, count, ttl);
      } catch (err) {
        skipUntil = Date.now() + 1000;
        opts.onError?.(err);
        return fallback.hit(key);
      }
    },
  };
}

/** createMemoryRateLimiter counts in this process only; the default without REDIS_URL. */
export function createMemoryRateLimiter(opts: RateLimitOptions): RateLimiter {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const windowMs = opts.windowSeconds * 1000;
  let lastSweep = Date.now();
  return {
    kind: "memory",
    async hit(key) {
      const now = Date.now();
      if (now - lastSweep > windowMs) {
        for (const [k, w] of windows) if (w.resetAt <= now) windows.delete(k);
        lastSweep = now;
      }
      let w = windows.get(key);
      if (!w || w.resetAt <= now) {
        w = { count: 0, resetAt: now + windowMs };
        windows.set(key, w);
      }
      w.count++;
      return result(opts.max, w.count, w.resetAt - now);
    },
  };
}

/**
 * clientIp is the caller's address: the first `x-forwarded-for` hop when TRUST_PROXY says our
 * own proxy sets it (otherwise any client could pick a fresh rate-limit budget per request),
 * else the socket address from Bun's server (`c.env` is the Bun server under `Bun.serve`).
 */
export function clientIp(c: Context<AppEnv>): string {
  const forwarded = c.get("platform").trustProxy ? c.req.header("x-forwarded-for")?.split(",")[0]?.trim() : undefined;
  if (forwarded) return forwarded;
  const server = c.env as { requestIP?: (req: Request) => { address: string } | null } | undefined;
  return (typeof server?.requestIP === "function" ? server.requestIP(c.req.raw)?.address : undefined) || "unknown";
}

/**
 * enforceRateLimit counts the request, per user when the caller is signed in, per client IP
 * otherwise, and runs `next` unless the budget is spent (then a 429 problem with `Retry-After`).
 * The IETF `RateLimit-*` headers go on every answer: prepared before the handler runs, so its
 * answer is built with them, and set afterwards on an answer made without them.
 */
export async function enforceRateLimit(c: Context<AppEnv>, next: () => Promise<void>): Promise<void> {
  const user = c.get("user");
  const r = await c.get("platform").rateLimiter.hit(user ? `u:${user.id}` : `ip:${clientIp(c)}`);
  const limit = String(r.limit);
  const remaining = String(r.remaining);
  const reset = String(r.resetSeconds);
  if (!r.allowed) {
    throw new DomainError("RATE_LIMITED", "rate_limited", `Too many requests; retry in ${r.resetSeconds} s.`, {
      headers: { "ratelimit-limit": limit, "ratelimit-remaining": remaining, "ratelimit-reset": reset, "retry-after": reset },
    });
  }
  c.header("ratelimit-limit", limit);
  c.header("ratelimit-remaining", remaining);
  c.header("ratelimit-reset", reset);
  await next();
  const headers = c.res.headers;
  if (headers.get("ratelimit-limit") === null) {
    headers.set("ratelimit-limit", limit);
    headers.set("ratelimit-remaining", remaining);
    headers.set("ratelimit-reset", reset);
  }
}

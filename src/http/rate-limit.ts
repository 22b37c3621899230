import type { Redis } from "ioredis";
import type { Context, MiddlewareHandler } from "hono";
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

/** createRedisRateLimiter counts in Redis with one atomic Lua call per hit, shared by every replica. */
export function createRedisRateLimiter(redis: Redis, opts: RateLimitOptions): RateLimiter {
  const prefix = opts.prefix ?? "ratelimit:";
  const windowMs = opts.windowSeconds * 1000;
  redis.defineCommand("rateLimitHit", { numberOfKeys: 1, lua: FIXED_WINDOW });
  const hit = (redis as unknown as { rateLimitHit(key: string, windowMs: number): Promise<[number, number]> }).rateLimitHit.bind(redis);
  return {
    kind: "redis",
    async hit(key) {
      const [count, ttl] = await hit(prefix + key, windowMs);
      return result(opts.max, count, ttl);
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
  const forwarded = c.get("trustProxy") ? c.req.header("x-forwarded-for")?.split(",")[0]?.trim() : undefined;
  if (forwarded) return forwarded;
  const server = c.env as { requestIP?: (req: Request) => { address: string } | null } | undefined;
  return (typeof server?.requestIP === "function" ? server.requestIP(c.req.raw)?.address : undefined) || "unknown";
}

/**
 * rateLimit limits per user when the caller is signed in, per client IP otherwise, and sets
 * the IETF `RateLimit-*` headers on every answer and `Retry-After` on a 429.
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const user = c.get("user");
    const r = await c.get("rateLimiter").hit(user ? `u:${user.id}` : `ip:${clientIp(c)}`);
    const headers = {
      "ratelimit-limit": String(r.limit),
      "ratelimit-remaining": String(r.remaining),
      "ratelimit-reset": String(r.resetSeconds),
    };
    if (!r.allowed) {
      throw new DomainError("RATE_LIMITED", "rate_limited", `Too many requests; retry in ${r.resetSeconds} s.`, {
        headers: { ...headers, "retry-after": String(r.resetSeconds) },
      });
    }
    await next();
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  };
}

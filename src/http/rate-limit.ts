import type { Context } from "hono";
import { DomainError } from "../errors.ts";
import type { AppEnv, AuthUser, RateKey, RateLimiter, RateLimitResult } from "./env.ts";

/**
 * RateLimitOptions: at most `max` requests per caller (a user, or an address while signed out)
 * and at most `ipMax` (default `max`) per client address whoever is signed in, in each
 * `windowSeconds` window.
 */
export interface RateLimitOptions {
  max: number;
  ipMax?: number;
  windowSeconds: number;
  prefix?: string;
}

/** rateResult is one counter's answer: allowed while `count` is within `max`. */
export function rateResult(max: number, count: number, ttlMs: number): RateLimitResult {
  return { allowed: count <= max, limit: max, remaining: Math.max(0, max - count), resetSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) };
}

/** tightest is the result to act on: a refused one if any, else the one with the least left. */
export function tightest(results: RateLimitResult[]): RateLimitResult {
  let pick = results[0]!;
  for (const r of results) {
    if (pick.allowed && !r.allowed) pick = r;
    else if (pick.allowed === r.allowed && r.remaining < pick.remaining) pick = r;
  }
  return pick;
}

/** createMemoryRateLimiter counts in this process only; the default without REDIS_URL. Its `hit` answers at once. */
export function createMemoryRateLimiter(opts: RateLimitOptions): RateLimiter {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const windowMs = opts.windowSeconds * 1000;
  let lastSweep = Date.now();
  const one = (key: string, max: number, now: number) => {
    let w = windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      windows.set(key, w);
    }
    w.count++;
    return rateResult(max, w.count, w.resetAt - now);
  };
  return {
    kind: "memory",
    max: opts.max,
    ipMax: opts.ipMax ?? opts.max,
    hit(keys) {
      const now = Date.now();
      if (now - lastSweep > windowMs) {
        for (const [k, w] of windows) if (w.resetAt <= now) windows.delete(k);
        lastSweep = now;
      }
      return tightest(keys.map((k) => one(k.key, k.max, now)));
    },
    async giveBack(keys) {
      for (const key of keys) {
        const w = windows.get(key);
        if (w && w.count > 0) w.count--;
      }
    },
  };
}

/**
 * clientIp is the caller's address: the first `x-forwarded-for` hop when TRUST_PROXY says our
 * own proxy sets it (otherwise any client could pick a fresh rate-limit budget per request),
 * else the socket address from Bun's server (`c.env` is the Bun server under `Bun.serve`).
 */
export function clientIp(c: Context<AppEnv>): string {
  return clientAddress(c.req.raw, c.env, c.get("platform").trustProxy);
}

/** clientAddress is `clientIp` for a bare request and the server that received it (what Bun hands a native route). */
export function clientAddress(req: Request, server: unknown, trustProxy: boolean): string {
  const forwarded = trustProxy ? req.headers.get("x-forwarded-for")?.split(",")[0]?.trim() : undefined;
  if (forwarded) return forwarded;
  const s = server as { requestIP?: (req: Request) => { address: string } | null } | undefined;
  return (typeof s?.requestIP === "function" ? s.requestIP(req)?.address : undefined) || "unknown";
}

function refuse(r: RateLimitResult): never {
  const reset = String(r.resetSeconds);
  throw new DomainError("RATE_LIMITED", "rate_limited", `Too many requests; retry in ${r.resetSeconds} s.`, {
    headers: { "ratelimit-limit": String(r.limit), "ratelimit-remaining": String(r.remaining), "ratelimit-reset": reset, "retry-after": reset },
  });
}

/**
 * countRefusedAt counts a request its access check refused (a bad or missing token, a user on an
 * admin route) against its client address `ip`: guessing tokens spends the same budget as
 * anything else. Over the budget the answer is the 429 instead of the refusal.
 */
export async function countRefusedAt(limiter: RateLimiter, ip: string): Promise<void> {
  const r = await limiter.hit([
    { key: `addr:${ip}`, max: limiter.ipMax },
    { key: `ip:${ip}`, max: limiter.max },
  ]);
  if (!r.allowed) refuse(r);
}

const admitted = (r: RateLimitResult): RateLimitResult => (r.allowed ? r : refuse(r));

/**
 * countRequest counts a request against its client address `ip` (every request, signed in or not:
 * extra accounts give no extra budget) and against its caller (the user when signed in, else the
 * address), in one call; when either budget is spent it throws the 429 problem (with `Retry-After`
 * and the `RateLimit-*` headers), else it returns the tighter budget: at once (a value, or a
 * synchronous throw) when the limiter decided in process, else as a promise.
 */
export function countRequest(limiter: RateLimiter, ip: string, user: AuthUser | undefined): RateLimitResult | Promise<RateLimitResult> {
  const keys: RateKey[] = [{ key: `addr:${ip}`, max: limiter.ipMax }, user ? { key: `u:${user.id}`, max: limiter.max } : { key: `ip:${ip}`, max: limiter.max }];
  const r = limiter.hit(keys);
  return r instanceof Promise ? r.then(admitted) : admitted(r);
}

/**
 * withRateHeaders puts the IETF `RateLimit-*` headers of `r` (the tighter budget) on the answer:
 * prepared before `next` runs the handler, so its answer is built with them, and set afterwards
 * on an answer made without them.
 */
export async function withRateHeaders(c: Context<AppEnv>, r: RateLimitResult, next: () => Promise<void>): Promise<void> {
  const limit = String(r.limit);
  const remaining = String(r.remaining);
  const reset = String(r.resetSeconds);
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

/** SignInLimit guards one sign-in attempt: see signInLimit. */
export interface SignInLimit {
  /** check counts the attempt against `account` (the account's id, or the login when none matches) and the address; over either budget it throws a 429. */
  check(account: string): Promise<void>;
  /** succeeded gives the attempt back: only failures use the budget up. */
  succeeded(): Promise<void>;
}

/**
 * signInLimit guards a sign-in attempt with two budgets of attempts per SIGNIN_WINDOW_SECONDS:
 * per target account (credential stuffing spreads guesses over addresses) and per address
 * (spraying spreads them over accounts). The attempt is counted before the password is checked,
 * so parallel guesses cannot overrun the budget; a successful one is given back. The account is
 * keyed by its id once the login is resolved, so a username and an email of one account share
 * one budget.
 *
 * @example const limit = signInLimit(c); const account = await authenticate(db, login, password, limit.check); await limit.succeeded();
 */
export function signInLimit(c: Context<AppEnv>): SignInLimit {
  const limiter = c.get("platform").signInLimiter;
  let keys: string[] = [];
  return {
    async check(account) {
      keys = [`acct:${account}`, `addr:${clientIp(c)}`];
      const r = await limiter.hit(keys.map((key) => ({ key, max: limiter.max })));
      if (!r.allowed) {
        throw new DomainError("AUTH.TOO_MANY_SIGN_INS", "rate_limited", `Too many failed sign-ins; retry in ${r.resetSeconds} s.`, {
          headers: { "retry-after": String(r.resetSeconds) },
        });
      }
    },
    async succeeded() {
      await limiter.giveBack(keys);
    },
  };
}

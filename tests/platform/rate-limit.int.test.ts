import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { Redis } from "ioredis";
import pino from "pino";
import { createRedisRateLimiter } from "../../src/http/rate-limit-redis.ts";
import { createServer, type Server } from "../../src/server.ts";
import { expectProblem, signUp, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const MAX = 3;
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** anonymous sends one cheap rate-limited request (an invalid login: 400 once counted). */
const anonymous = (s: Pick<Server, "app">, ip: string) =>
  s.app.request("/api/v1/auth/token", { method: "POST", headers: { "content-type": "application/json", "x-forwarded-for": ip }, body: "{}" });

/** fromSocket sends the same request as Bun.serve would hand it over: no proxy header, a socket address. */
const fromSocket = (s: Pick<Server, "app">, address: string) =>
  s.app.fetch(new Request("http://local/api/v1/auth/token", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }), {
    requestIP: () => ({ address, family: "IPv4", port: 40000 }),
  });

const me = (s: TestServer, token: string, ip: string) => s.request("/api/v1/users/me", { token, headers: { "x-forwarded-for": ip } });

describe("rate limiting in memory", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ ROLES: "api", RATE_LIMIT_MAX: String(MAX) });
  });
  afterAll(() => s.close());

  it("counts in this process when no REDIS_URL is set", () => {
    expect(s.rateLimiter.kind).toBe("memory");
  });

  it("tells the client its budget on every answer", async () => {
    const ip = uniqueIp();
    const remaining: (string | null)[] = [];
    for (let i = 0; i < MAX; i++) {
      const res = await anonymous(s, ip);
      expect(res.status).toBe(400);
      expect(res.headers.get("ratelimit-limit")).toBe(String(MAX));
      expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
      remaining.push(res.headers.get("ratelimit-remaining"));
    }
    expect(remaining).toEqual(["2", "1", "0"]);
  });

  it("answers the request after the limit with 429, Retry-After and RateLimit headers", async () => {
    const ip = uniqueIp();
    for (let i = 0; i < MAX; i++) expect((await anonymous(s, ip)).status).toBe(400);
    const res = await anonymous(s, ip);
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(s.config.RATE_LIMIT_WINDOW_SECONDS);
    expect(res.headers.get("ratelimit-limit")).toBe(String(MAX));
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
    expect(res.headers.get("ratelimit-reset")).toBe(String(retryAfter));
    const p = await expectProblem(res, 429, "RATE_LIMITED");
    expect(p.detail).toContain(String(retryAfter));
  });

  it("counts signed-out callers per client address, so another address is unaffected", async () => {
    const [spent, fresh] = [uniqueIp(), uniqueIp()];
    for (let i = 0; i <= MAX; i++) await anonymous(s, spent);
    expect((await anonymous(s, spent)).status).toBe(429);
    const res = await anonymous(s, fresh);
    expect(res.status).toBe(400);
    expect(res.headers.get("ratelimit-remaining")).toBe(String(MAX - 1));
  });

  it("counts by the socket address when no proxy header is sent", async () => {
    for (let i = 0; i < MAX; i++) expect((await fromSocket(s, "192.0.2.10")).status).toBe(400);
    await expectProblem(await fromSocket(s, "192.0.2.10"), 429, "RATE_LIMITED");
    const other = await fromSocket(s, "192.0.2.11");
    expect(other.status).toBe(400);
    expect(other.headers.get("ratelimit-remaining")).toBe(String(MAX - 1));
  });

  it("counts signed-in callers per user, so another user is unaffected whatever their address", async () => {
    const [alice, bob] = await Promise.all([signUp(s, "alice"), signUp(s, "bob")]);
    const spentIp = uniqueIp();
    for (let i = 0; i <= MAX; i++) await anonymous(s, spentIp);
    // Alice's budget is her own: the spent address does not count against her.
    for (let i = 0; i < MAX; i++) expect((await me(s, alice.token, spentIp)).status).toBe(200);
    await expectProblem(await me(s, alice.token, uniqueIp()), 429, "RATE_LIMITED");
    const res = await me(s, bob.token, spentIp);
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-remaining")).toBe(String(MAX - 1));
  });

  it("does not limit the health probe", async () => {
    const statuses = await Promise.all(Array.from({ length: MAX * 2 }, () => s.request("/health").then((r) => r.status)));
    expect(statuses).toEqual(Array<number>(MAX * 2).fill(200));
  });
});

/** redisReachable pings Redis once, quickly, without retrying. */
async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

const redisUp = await redisReachable();
// On CI Redis is part of the contract: an unreachable Redis fails these tests instead of skipping them.
const requireRedis = process.env.CI === "true";
if (!redisUp && !requireRedis) console.warn(`rate-limit.int.test.ts: Redis at ${REDIS_URL} is unreachable; skipping the Redis tests (they fail when CI=true)`);

describe.skipIf(!redisUp && !requireRedis)("rate limiting in Redis", () => {
  let a: TestServer;
  let b: Server;
  let redis: Redis;
  const keys = new Set<string>();
  const key = (k: string) => {
    keys.add(`ratelimit:${k}`);
    return `ratelimit:${k}`;
  };

  beforeAll(async () => {
    if (!redisUp) throw new Error(`CI=true and Redis at ${REDIS_URL} is unreachable`);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    a = await startTestServer({ ROLES: "api", RATE_LIMIT_MAX: String(MAX), REDIS_URL });
    // A second replica: its own process state, the same database and the same Redis.
    b = await createServer(a.config, { log: pino({ level: "silent" }) });
  });
  afterAll(async () => {
    if (keys.size) await redis?.del(...keys);
    redis?.disconnect();
    await b?.stop();
    await a?.close();
  });

  it("uses the Redis limiter when REDIS_URL is set", () => {
    expect(a.rateLimiter.kind).toBe("redis");
    expect(b.rateLimiter.kind).toBe("redis");
  });

  it("keeps the per-address counter in Redis with the window as its expiry", async () => {
    const ip = uniqueIp();
    expect((await anonymous(a, ip)).status).toBe(400);
    expect((await anonymous(a, ip)).status).toBe(400);
    expect(await redis.get(key(`ip:${ip}`))).toBe("2");
    const ttl = await redis.pttl(key(`ip:${ip}`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(a.config.RATE_LIMIT_WINDOW_SECONDS * 1000);
  });

  it("keeps the per-user counter in Redis", async () => {
    const user = await signUp(a, "redis");
    expect((await me(a, user.token, uniqueIp())).status).toBe(200);
    expect(await redis.get(key(`u:${user.id}`))).toBe("1");
  });

  it("shares one count between two servers on the same Redis", async () => {
    const ip = uniqueIp();
    expect((await anonymous(a, ip)).status).toBe(400);
    expect((await anonymous(b, ip)).status).toBe(400);
    expect((await anonymous(a, ip)).status).toBe(400);
    // Each server alone has seen at most two requests: only a shared counter says 429 now.
    await expectProblem(await anonymous(b, ip), 429, "RATE_LIMITED");
    await expectProblem(await anonymous(a, ip), 429, "RATE_LIMITED");
    expect(await redis.get(key(`ip:${ip}`))).toBe(String(MAX + 2));
  });

  it("counts a caller far from the limit in process, then every hit in Redis: one process stays exact", async () => {
    const prefix = `rl-test-${crypto.randomUUID()}:`;
    keys.add(`${prefix}u:exact`);
    const limiter = createRedisRateLimiter(redis, { max: 40, windowSeconds: 60, prefix, syncMs: 10_000 });
    const results = [];
    for (let i = 0; i < 50; i++) results.push(await limiter.hit([{ key: "u:exact", max: 40 }]));
    expect(results.filter((r) => r.allowed)).toHaveLength(40);
    expect(results.slice(40).every((r) => !r.allowed)).toBe(true);
    expect(results.map((r) => r.remaining)).toEqual(Array.from({ length: 50 }, (_, i) => Math.max(0, 39 - i)));
    // Hits 2 to 30 were counted here (30 leaves the last tenth, 10 at least, to Redis); the rest
    // went to Redis one by one, taking the unsent ones with them: Redis holds every hit already.
    expect(await redis.get(`${prefix}u:exact`)).toBe("50");
  });

  it("sends the hits counted in process in one batch per sync period, for every counter at once", async () => {
    const prefix = `rl-test-${crypto.randomUUID()}:`;
    for (const k of ["u:a", "u:b"]) keys.add(`${prefix}${k}`);
    const limiter = createRedisRateLimiter(redis, { max: 1000, windowSeconds: 60, prefix, syncMs: 10_000 });
    for (let i = 0; i < 20; i++)
      await limiter.hit([
        { key: "u:a", max: 1000 },
        { key: "u:b", max: 1000 },
      ]);
    // The first hit went to Redis; the next 19 wait for the sync.
    expect(await redis.mget(`${prefix}u:a`, `${prefix}u:b`)).toEqual(["1", "1"]);
    await limiter.flush();
    expect(await redis.mget(`${prefix}u:a`, `${prefix}u:b`)).toEqual(["20", "20"]);
    expect(await redis.pttl(`${prefix}u:a`)).toBeGreaterThan(0);
  });

  it("gives a replica the count of the others at each sync, so near the limit both are exact", async () => {
    const prefix = `rl-test-${crypto.randomUUID()}:`;
    keys.add(`${prefix}u:shared`);
    const other = redis.duplicate();
    try {
      const opts = { max: 40, windowSeconds: 60, prefix, syncMs: 10_000 };
      const [one, two] = [createRedisRateLimiter(redis, opts), createRedisRateLimiter(other, opts)];
      const hit = (l: typeof one) => l.hit([{ key: "u:shared", max: 40 }]);
      for (let i = 0; i < 20; i++) await hit(one);
      await one.flush();
      // The second replica's first hit reads the count (21), then it counts locally up to 30 and
      // goes to Redis for every hit after; the first one, seeing 20 plus its own, does the same.
      const allowed: boolean[] = [];
      for (let i = 0; i < 30; i++) {
        allowed.push((await hit(i % 2 ? one : two)).allowed);
        await Promise.all([one.flush(), two.flush()]);
      }
      expect(allowed.filter(Boolean)).toHaveLength(20);
      expect(await redis.get(`${prefix}u:shared`)).toBe("50");
    } finally {
      other.disconnect();
    }
  });

  it("keys a direct connection on its socket address on the real server", async () => {
    const port = a.listen();
    const counter = key("ip:127.0.0.1");
    keys.delete(counter); // other runs may share this address's counter: leave it to expire
    const before = Number((await redis.get(counter)) ?? 0);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect([400, 429]).toContain(res.status);
    expect(Number(await redis.get(counter))).toBeGreaterThan(before);
  });
});

describe("client address", () => {
  it("ignores x-forwarded-for unless TRUST_PROXY says a proxy of ours sets it", async () => {
    const s = await startTestServer({ ROLES: "api", RATE_LIMIT_MAX: String(MAX), TRUST_PROXY: "false" });
    try {
      // Each request claims a fresh address; without a trusted proxy they all count against the socket's.
      for (let i = 0; i < MAX; i++) expect((await anonymous(s, uniqueIp())).status).toBe(400);
      await expectProblem(await anonymous(s, uniqueIp()), 429, "RATE_LIMITED");
    } finally {
      await s.close();
    }
  });
});

describe("limits that hold for signed-in callers (issue 11)", () => {
  const IP_MAX = 6;
  const FAILURES = 3;
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ ROLES: "api", RATE_LIMIT_MAX: "1000", RATE_LIMIT_IP_MAX: String(IP_MAX), SIGNIN_MAX_FAILURES: String(FAILURES) });
  });
  afterAll(() => s.close());

  it("keeps one address with several accounts within the address's limit", async () => {
    const users = await Promise.all([signUp(s, "multi"), signUp(s, "multi"), signUp(s, "multi")]);
    const ip = uniqueIp();
    const statuses: number[] = [];
    // Each account alone is far below its own budget (1000); together they spend the address's.
    for (let i = 0; i < IP_MAX * 2; i++) statuses.push((await me(s, users[i % users.length]!.token, ip)).status);
    expect(statuses.filter((x) => x === 200)).toHaveLength(IP_MAX);
    expect(statuses.slice(IP_MAX)).toEqual(Array<number>(IP_MAX).fill(429));
    // The accounts themselves are fine from another address.
    expect((await me(s, users[0]!.token, uniqueIp())).status).toBe(200);
  });

  it("counts requests refused with 401 against the address", async () => {
    const ip = uniqueIp();
    const forged = () => me(s, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged", ip);
    for (let i = 0; i < IP_MAX; i++) expect((await forged()).status).toBe(401);
    await expectProblem(await forged(), 429, "RATE_LIMITED");
    const user = await signUp(s, "after");
    await expectProblem(await me(s, user.token, ip), 429, "RATE_LIMITED");
  });

  const signIn = (login: string, password: string, ip: string) =>
    s.request("/api/v1/auth/token", { method: "POST", json: { login, password }, headers: { "x-forwarded-for": ip } });

  it("limits failed sign-ins per target account, from however many addresses", async () => {
    const victim = await signUp(s, "victim");
    for (let i = 0; i < FAILURES; i++) await expectProblem(await signIn(victim.username, `guess-${i}`, uniqueIp()), 401, "USERS.INVALID_CREDENTIALS");
    // The next guess, even the right password from a fresh address, is refused before it is checked.
    const res = await signIn(victim.email, "password123", uniqueIp());
    await expectProblem(res, 429, "AUTH.TOO_MANY_SIGN_INS");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("limits failed sign-ins per address, across however many accounts", async () => {
    const ip = uniqueIp();
    const targets = await Promise.all([signUp(s, "spray"), signUp(s, "spray"), signUp(s, "spray"), signUp(s, "spray")]);
    for (let i = 0; i < FAILURES; i++) await expectProblem(await signIn(targets[i]!.username, "Summer2026!", ip), 401, "USERS.INVALID_CREDENTIALS");
    await expectProblem(await signIn(targets[3]!.username, "Summer2026!", ip), 429, "AUTH.TOO_MANY_SIGN_INS");
  });

  it("counts wrong current passwords on a password change against the account's sign-in budget", async () => {
    const user = await signUp(s, "stolen");
    const change = (currentPassword: string) =>
      s.request("/api/v1/users/me/password", {
        method: "PUT",
        token: user.token,
        json: { currentPassword, newPassword: "new-password-1" },
        headers: { "x-forwarded-for": uniqueIp() },
      });
    for (let i = 0; i < FAILURES; i++) await expectProblem(await change(`guess-${i}`), 401, "USERS.INVALID_CREDENTIALS");
    await expectProblem(await change("password123"), 429, "AUTH.TOO_MANY_SIGN_INS");
  });

  it("does not count successful sign-ins against the budget", async () => {
    const user = await signUp(s, "regular");
    const ip = uniqueIp();
    // FAILURES + 1 successes, then a failure: all within the address's general budget too.
    for (let i = 0; i <= FAILURES; i++) expect((await signIn(i % 2 ? user.email : user.username, "password123", ip)).status).toBe(200);
    await expectProblem(await signIn(user.username, "wrong-password", ip), 401, "USERS.INVALID_CREDENTIALS");
  });
});

import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test";
import { sign } from "hono/jwt";
import { Redis } from "ioredis";
import pino from "pino";
import { loadConfig } from "../../src/config.ts";
import { createJwtAuth } from "../../src/http/auth.ts";
import { createServer, type Server } from "../../src/server.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { newUser } from "../support/http.ts";
import { type PgCountingProxy, pgCountingProxy, redisCountingProxy } from "../support/tcp-proxy.ts";

// A signed-in read by primary key costs the database exactly that query: the token, the rate
// limit and the request context take no round trip to Postgres, and the rate limit one command
// to Redis when it is there.

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const READS = 5;

let tdb: TestDatabase;
let pg: PgCountingProxy;
const servers: Server[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  pg = await pgCountingProxy(tdb.url);
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  pg.close();
  await tdb.drop();
});

const HOT_PATH_SECRET = `hot-path-secret-${crypto.randomUUID()}`;

/** start composes the app with its database behind the counting proxy, one pooled connection. */
async function start(env: Record<string, string> = {}): Promise<Server> {
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: pg.url(tdb.url),
    DATABASE_POOL_MAX: "1",
    ROLES: "api",
    LOG_LEVEL: "silent",
    RATE_LIMIT_MAX: "100000",
    ADMIN_PASSWORD: "admin-test-password",
    JWT_SECRET: HOT_PATH_SECRET,
    ...env,
  });
  const s = await createServer(config, { log: pino({ level: "silent" }) });
  servers.push(s);
  return s;
}

async function signIn(s: Server): Promise<string> {
  const user = newUser("hot");
  const json = { "content-type": "application/json" };
  expect((await s.app.request("/api/v1/users", { method: "POST", headers: json, body: JSON.stringify(user) })).status).toBe(201);
  const res = await s.app.request("/api/v1/auth/token", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ login: user.username, password: user.password }),
  });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

const me = (s: Server, token: string) => s.app.request("/api/v1/users/me", { headers: { authorization: `Bearer ${token}` } });

describe("a signed-in read", () => {
  it("costs Postgres one statement in one round trip, and nothing else", async () => {
    const s = await start();
    const token = await signIn(s);
    expect((await me(s, token)).status).toBe(200); // the connection prepares the statement once
    pg.reset();
    for (let i = 0; i < READS; i++) expect((await me(s, token)).status).toBe(200);
    expect(pg.statements()).toBe(READS);
    expect(pg.flushes).toBe(READS);
    expect(pg.messages.P ?? 0).toBe(0);
  });

  it("checks the token's account once per AUTH_ACCOUNT_CACHE_MS: with no cache, a second statement per read", async () => {
    // The revocation check (issue 11) reads the account's state; cached, it is off the hot path
    // (the test above), uncached it is one more statement on every request.
    const s = await start({ AUTH_ACCOUNT_CACHE_MS: "0" });
    const token = await signIn(s);
    expect((await me(s, token)).status).toBe(200);
    pg.reset();
    for (let i = 0; i < READS; i++) expect((await me(s, token)).status).toBe(200);
    expect(pg.statements()).toBe(READS * 2);
  });

  it("with Redis and RATE_LIMIT_SYNC_MS=0, costs one Redis command per read for the rate limit, still one statement", async () => {
    const redis = await redisCountingProxy(REDIS_URL);
    let s: Server | undefined;
    try {
      s = await start({ REDIS_URL: redis.url(REDIS_URL), RATE_LIMIT_SYNC_MS: "0" });
      const token = await signIn(s);
      expect((await me(s, token)).status).toBe(200);
      pg.reset();
      redis.reset();
      for (let i = 0; i < READS; i++) expect((await me(s, token)).status).toBe(200);
      // Besides the reads' commands, only the timelines' tracking connection's heartbeat (a PING
      // every 250 ms, modules/timelines/local-copies.ts) may pass, when the reads take that long.
      const { ping: _heartbeat, ...commands } = redis.commands;
      expect(commands).toEqual({ evalsha: READS });
      expect(pg.statements()).toBe(READS);
    } finally {
      // The server's Redis client goes first, so it never sees the proxy vanish.
      await s?.stop();
      servers.splice(servers.indexOf(s!), 1);
      redis.close();
    }
  });

  it("with Redis, counts a caller far from the limit in process: no Redis command in the request, the hits sent in one batch", async () => {
    const redis = await redisCountingProxy(REDIS_URL);
    const direct = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    let s: Server | undefined;
    try {
      s = await start({ REDIS_URL: redis.url(REDIS_URL), RATE_LIMIT_SYNC_MS: "1000", RATE_LIMIT_IP_MAX: "100000" });
      const token = await signIn(s);
      const first = await me(s, token);
      expect(first.status).toBe(200);
      const { id } = (await first.json()) as { id: string };
      pg.reset();
      redis.reset();
      const remaining: number[] = [];
      for (let i = 0; i < READS; i++) {
        const res = await me(s, token);
        expect(res.status).toBe(200);
        remaining.push(Number(res.headers.get("ratelimit-remaining")));
      }
      // Within one sync period: nothing went to Redis, and the budget still counts down one per request.
      // (The timeline cache's tracking connection pings on its own: only the rate limit's scripts count here.)
      expect(redis.commands.evalsha ?? 0).toBe(0);
      expect(remaining.slice(1).map((r, i) => remaining[i]! - r)).toEqual(Array<number>(READS - 1).fill(1));
      expect(pg.statements()).toBe(READS);
      // Then every hit reaches Redis, in one command.
      await eventually(async () => (await direct.get(`ratelimit:u:${id}`)) === String(READS + 1), 3000);
      expect(redis.commands.evalsha).toBe(1);
    } finally {
      await s?.stop();
      servers.splice(servers.indexOf(s!), 1);
      redis.close();
      direct.disconnect();
    }
  });
});

describe("verified tokens", () => {
  const secret = HOT_PATH_SECRET;
  const claims = (over: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return { sub: crypto.randomUUID(), role: "user", username: "cached", ver: 0, iss: "eventful-monolith", iat: now, exp: now + 600, ...over };
  };
  // These tests are about the signature cache: every account exists, at version 0.
  const accounts = async () => ({ role: "user" as const, username: "cached", tokenVersion: 0, disabled: false });

  it("checks a token's signature once, then answers from the verified identity", async () => {
    const auth = createJwtAuth(secret, 600, { accounts });
    const token = await sign(claims(), secret, "HS256");
    const verify = spyOn(crypto.subtle, "verify");
    try {
      const first = await auth.verify(token);
      const calls = verify.mock.calls.length;
      expect(calls).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) expect(await auth.verify(token)).toEqual(first);
      expect(verify.mock.calls.length).toBe(calls);
    } finally {
      verify.mockRestore();
    }
  });

  it("knows a token at once only when verify would accept it without awaiting anything, with the same caller", async () => {
    let state = { role: "user" as const, username: "cached", tokenVersion: 0, disabled: false };
    const reads: string[] = [];
    const auth = createJwtAuth(secret, 600, {
      accounts: async (id) => {
        reads.push(id);
        return state;
      },
      accountCacheMs: 60_000,
    });
    const c = claims();
    const token = await sign(c, secret, "HS256");
    // Never verified: unknown (verify checks the signature and reads the account).
    expect(auth.verify.known!(token)).toBeUndefined();
    const first = await auth.verify(token);
    expect(auth.verify.known!(token)).toEqual(first);
    expect(reads).toEqual([c.sub]);
    // The account's state forgotten (a password change here): unknown until verify has read it again.
    auth.forget(c.sub);
    state = { ...state, tokenVersion: 1 };
    expect(auth.verify.known!(token)).toBeUndefined();
    await expect(auth.verify(token)).rejects.toMatchObject({ code: "AUTH.TOKEN_REVOKED" });
    // A refused token is never known: verify gives the refusal every time.
    expect(auth.verify.known!(token)).toBeUndefined();
    const renewed = await sign(claims({ sub: c.sub, ver: 1 }), secret, "HS256");
    expect(auth.verify.known!(renewed)).toBeUndefined();
    expect(await auth.verify(renewed)).toEqual(first);
    expect(auth.verify.known!(renewed)).toEqual(first);
    // A state being read again (expired from the cache) is not known until the read has settled.
    const noCache = createJwtAuth(secret, 600, { accounts: async () => state, accountCacheMs: 0 });
    await noCache.verify(renewed);
    expect(noCache.verify.known!(renewed)).toBeUndefined();
  });

  it("does not know an expired token: verify refuses it", async () => {
    const auth = createJwtAuth(secret, 600, { accounts });
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(claims({ iat: now, exp: now + 2 }), secret, "HS256");
    await auth.verify(token);
    expect(auth.verify.known!(token)?.username).toBe("cached");
    await eventually(() => auth.verify.known!(token) === undefined, 10_000);
    await expect(auth.verify(token)).rejects.toMatchObject({ code: "AUTH.TOKEN_EXPIRED" });
  });

  it("refuses a remembered token as expired once its exp has passed", async () => {
    const auth = createJwtAuth(secret, 600, { accounts });
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(claims({ iat: now, exp: now + 2 }), secret, "HS256");
    expect((await auth.verify(token)).username).toBe("cached");
    await eventually(async () => {
      const err = await auth.verify(token).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "AUTH.TOKEN_EXPIRED" });
    }, 10_000);
  });

  it("still checks in full a token that differs from a remembered one by one character", async () => {
    const auth = createJwtAuth(secret, 600, { accounts });
    const token = await sign(claims(), secret, "HS256");
    await auth.verify(token);
    const last = token.at(-1) === "A" ? "B" : "A";
    await expect(auth.verify(token.slice(0, -1) + last)).rejects.toMatchObject({ code: "AUTH.TOKEN_INVALID" });
  });

  it("keeps at most cacheSize tokens, dropping the least recently used", async () => {
    const auth = createJwtAuth(secret, 600, { accounts, cacheSize: 2 });
    const [a, b, c] = await Promise.all([sign(claims(), secret, "HS256"), sign(claims(), secret, "HS256"), sign(claims(), secret, "HS256")]);
    const verify = spyOn(crypto.subtle, "verify");
    try {
      await auth.verify(a);
      await auth.verify(b);
      await auth.verify(a); // a is now the most recently used
      await auth.verify(c); // evicts b
      const calls = verify.mock.calls.length;
      await auth.verify(a);
      await auth.verify(c);
      expect(verify.mock.calls.length).toBe(calls);
      await auth.verify(b);
      expect(verify.mock.calls.length).toBe(calls + 1);
    } finally {
      verify.mockRestore();
    }
  });
});

describe("Redis proxy sanity", () => {
  it("counts commands by name", async () => {
    const proxy = await redisCountingProxy(REDIS_URL);
    const r = new Redis(proxy.url(REDIS_URL), { maxRetriesPerRequest: 1 });
    try {
      await r.ping();
      proxy.reset();
      await Promise.all([r.ping(), r.ping(), r.get("hot-path:none")]);
      expect(proxy.commands).toEqual({ ping: 2, get: 1 });
    } finally {
      r.disconnect();
      proxy.close();
    }
  });
});

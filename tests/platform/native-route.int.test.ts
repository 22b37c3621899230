import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test";
import { randomUUIDv7 } from "bun";
import pino from "pino";
import { nativeRoutes } from "../../src/http/app.ts";
import { eventually } from "../support/eventually.ts";
import { signUp, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// A route declared with nativeGet (the home timeline) is answered by Bun.serve's own router when
// the server listens, outside Hono: every answer must be the one the Hono route gives in process
// (app.request) — status, body and headers, all but the ids — and be logged the same way.

type Answer = { status: number; body: string; headers: Record<string, string> };

const IDS = new Set(["x-request-id", "x-correlation-id", "date", "content-length"]);

async function answer(res: Response): Promise<Answer> {
  const headers: Record<string, string> = {};
  for (const [k, v] of res.headers) if (!IDS.has(k)) headers[k] = v;
  const body = (await res.text()).replace(/"requestId":"[^"]*"/, '"requestId":"…"');
  return { status: res.status, body, headers };
}

/** Lines written by the app's logger, parsed. */
const lines: Record<string, unknown>[] = [];
const logger = () =>
  pino(
    { level: "info" },
    {
      write: (s: string) =>
        void lines.push(
          ...s
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l)),
        ),
    },
  );

interface Paths {
  s: TestServer;
  url: string;
}

async function start(env: Record<string, string>): Promise<Paths> {
  const s = await startTestServer({ ROLES: "api,worker", WORKER_POLL_MS: "50", ...env }, { log: logger() });
  const port = s.listen();
  return { s, url: `http://127.0.0.1:${port}` };
}

/** author signs up `name` and posts `contents`, and returns once their timeline shows every post. */
async function author(p: Paths, name: string, contents: readonly string[]) {
  const user = await signUp(p.s, name);
  for (const content of contents) {
    const res = await p.s.request("/api/v1/posts", { method: "POST", token: user.token, json: { content }, headers: { "x-forwarded-for": uniqueIp() } });
    expect(res.status).toBe(201);
  }
  await eventually(async () => {
    const res = await p.s.request("/api/v1/timeline", { token: user.token, headers: { "x-forwarded-for": uniqueIp() } });
    return ((await res.json()) as { items: unknown[] }).items.length === contents.length;
  });
  return user;
}

/** both sends one request natively (over HTTP to the listening server) and one through app.request, and returns both answers. */
async function both(p: Paths, path: string, init: { token?: string; ip?: () => string; headers?: Record<string, string> } = {}) {
  const headers = (ip: string) => ({
    ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    "x-forwarded-for": ip,
    ...init.headers,
  });
  const ip = init.ip ?? uniqueIp;
  const native = await fetch(`${p.url}${path}`, { headers: headers(ip()) });
  const hono = await p.s.app.request(path, { headers: headers(ip()) });
  return { native: await answer(native), hono: await answer(hono), nativeRes: native };
}

/** sameAnswer compares two answers; a rate limit's reset seconds may differ by one (the requests straddle a second). */
function expectSame(a: Answer, b: Answer): void {
  const reset = (x: Answer) => Number(x.headers["ratelimit-reset"] ?? 0);
  if (Math.abs(reset(a) - reset(b)) === 1) {
    for (const x of [a, b]) {
      for (const h of ["ratelimit-reset", "retry-after"]) if (x.headers[h]) x.headers[h] = "*";
      x.body = x.body.replace(/retry in \d+ s/, "retry in * s");
    }
  }
  expect(a).toEqual(b);
}

describe("GET /api/v1/timeline served natively", () => {
  const IP_MAX = 5;
  let p: Paths;
  let user: Awaited<ReturnType<typeof author>>;
  beforeAll(async () => {
    p = await start({ RATE_LIMIT_MAX: "1000", RATE_LIMIT_IP_MAX: String(IP_MAX) });
    user = await author(p, "native", ["first", "second", "third"]);
  });
  afterAll(() => p.s.close());

  it("is registered in Bun's route table, and answers GET without the app", async () => {
    expect(Object.keys(nativeRoutes(p.s.app))).toEqual(["/api/v1/timeline"]);
    // What the native route hands on goes through app.fetch (Bun's fallback took its own reference at listen).
    const fallback = spyOn(p.s.app, "fetch");
    try {
      const res = await fetch(`${p.url}/api/v1/timeline`, { headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": uniqueIp() } });
      expect(res.status).toBe(200);
      expect(fallback).not.toHaveBeenCalled();
      const head = await fetch(`${p.url}/api/v1/timeline`, { method: "HEAD", headers: { authorization: `Bearer ${user.token}` } });
      expect(head.status).toBe(200);
      expect(fallback).toHaveBeenCalledTimes(1);
      // A GET sent with a body (fetch() cannot send one: a raw request) reaches handlers with none
      // (Bun's Request has a null body for GET, for the app's fetch too): answered here as a GET.
      const port = new URL(p.url).port;
      const raw = await new Promise<string>((resolve, reject) => {
        let text = "";
        Bun.connect({
          hostname: "127.0.0.1",
          port: Number(port),
          socket: {
            open: (sock) =>
              void sock.write(
                `GET /api/v1/timeline HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
              ),
            data: (_sock, chunk) => void (text += chunk.toString()),
            close: () => resolve(text),
            error: (_sock, err) => reject(err),
          },
        }).catch(reject);
      });
      expect(raw).toStartWith("HTTP/1.1 200");
      expect(fallback).toHaveBeenCalledTimes(1);
    } finally {
      fallback.mockRestore();
    }
  });

  it("answers a signed-in caller as the Hono route does, first page and later pages", async () => {
    const first = await both(p, "/api/v1/timeline", { token: user.token });
    expect(first.native.status).toBe(200);
    expect(JSON.parse(first.native.body).items).toHaveLength(3);
    expect(first.native.headers["ratelimit-remaining"]).toBe(String(IP_MAX - 1));
    expectSame(first.native, first.hono);
    const small = await both(p, "/api/v1/timeline?limit=2", { token: user.token });
    expectSame(small.native, small.hono);
    const cursor = JSON.parse(small.native.body).nextCursor as string;
    expect(cursor).toBeString();
    const next = await both(p, `/api/v1/timeline?limit=2&cursor=${cursor}`, { token: user.token });
    expect(JSON.parse(next.native.body).items).toHaveLength(1);
    expectSame(next.native, next.hono);
  });

  it("carries the ids it is given, or makes them, as the Hono route does", async () => {
    const given = await both(p, "/api/v1/timeline", { token: user.token, headers: { "x-request-id": "req-1", "x-correlation-id": "corr-1" } });
    expect(given.nativeRes.headers.get("x-request-id")).toBe("req-1");
    expect(given.nativeRes.headers.get("x-correlation-id")).toBe("corr-1");
    const made = await fetch(`${p.url}/api/v1/timeline`, { headers: { authorization: `Bearer ${user.token}`, "x-request-id": "not valid!" } });
    const id = made.headers.get("x-request-id")!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.headers.get("x-correlation-id")).toBe(id);
  });

  it("refuses a missing, malformed or bad token with the same 401", async () => {
    for (const headers of [{}, { authorization: "Basic abc" }, { authorization: "Bearer" }] as Record<string, string>[]) {
      const r = await both(p, "/api/v1/timeline", { headers });
      expect(r.native.status).toBe(401);
      expectSame(r.native, r.hono);
    }
    const r = await both(p, "/api/v1/timeline", { token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged" });
    expect(JSON.parse(r.native.body).code).toBe("AUTH.TOKEN_INVALID");
    expectSame(r.native, r.hono);
  });

  it("refuses a bad cursor or limit with the same 400", async () => {
    const bad = ["?limit=0", "?limit=101", "?limit=abc", "?limit=2&limit=3", "?cursor=", "?cursor=!!", `?cursor=${Buffer.from('["x"]').toString("base64url")}`];
    for (const q of bad) {
      const r = await both(p, `/api/v1/timeline${q}`, { token: user.token });
      expect({ q, status: r.native.status }).toEqual({ q, status: 400 });
      expectSame(r.native, r.hono);
    }
  });

  it("answers 429 over the address's budget, counting refused tokens too, as the Hono route does", async () => {
    const ip = uniqueIp();
    const same = () => ip;
    // Alternating paths share the address's budget: 4 refused here, then 1 left.
    for (let i = 0; i < 2; i++) {
      const r = await both(p, "/api/v1/timeline", { token: "bad.token.here", ip: same });
      expect([r.native.status, r.hono.status]).toEqual([401, 401]);
    }
    const last = await fetch(`${p.url}/api/v1/timeline`, { headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": ip } });
    expect(last.status).toBe(200);
    expect(last.headers.get("ratelimit-remaining")).toBe("0");
    for (const token of [user.token, "bad.token.here", undefined]) {
      const r = await both(p, "/api/v1/timeline", { token, ip: same });
      expect(r.native.status).toBe(429);
      expect(r.native.headers["retry-after"]).toBeString();
      expectSame(r.native, r.hono);
    }
  });

  it("refuses a disabled account's token and a revoked one at once, as the Hono route does", async () => {
    const victim = await signUp(p.s, "disabled");
    expect((await both(p, "/api/v1/timeline", { token: victim.token })).native.status).toBe(200);
    const admin = await p.s.adminToken();
    expect((await p.s.request(`/api/v1/admin/users/${victim.id}/disable`, { method: "POST", token: admin })).status).toBe(204);
    const r = await both(p, "/api/v1/timeline", { token: victim.token });
    expect(JSON.parse(r.native.body).code).toBe("AUTH.TOKEN_REVOKED");
    expectSame(r.native, r.hono);

    const changer = await signUp(p.s, "changer");
    const change = await p.s.request("/api/v1/users/me/password", {
      method: "PUT",
      token: changer.token,
      json: { currentPassword: "password123", newPassword: "new-password-1" },
      headers: { "x-forwarded-for": uniqueIp() },
    });
    expect(change.status).toBe(200);
    const revoked = await both(p, "/api/v1/timeline", { token: changer.token });
    expect(revoked.native.status).toBe(401);
    expectSame(revoked.native, revoked.hono);
  });

  it("answers an unexpected failure with the same 500 problem, logged on the request's logger", async () => {
    // A later page is never cached: with the table gone it fails in Postgres, on both paths.
    const cursor = Buffer.from(JSON.stringify([randomUUIDv7()])).toString("base64url");
    await p.s.database.sql`alter table timelines.entries rename to entries_away`;
    try {
      const before = lines.length;
      const r = await both(p, `/api/v1/timeline?cursor=${cursor}`, { token: user.token });
      expect(r.native.status).toBe(500);
      expectSame(r.native, r.hono);
      const id = r.nativeRes.headers.get("x-request-id");
      expect(lines.slice(before).some((l) => l.msg === "unhandled error" && l.requestId === id && l.level === 50)).toBe(true);
    } finally {
      await p.s.database.sql`alter table timelines.entries_away rename to entries`;
    }
  });

  it("writes the one request line, as the Hono route does", async () => {
    const before = lines.length;
    const r = await both(p, "/api/v1/timeline?limit=1", { token: user.token, headers: { "x-correlation-id": "corr-line" } });
    const written = lines.slice(before).filter((l) => l.msg === "request");
    expect(written).toHaveLength(2);
    const [native, hono] = written.map(({ requestId, time, ms, ...rest }) => {
      expect(typeof ms).toBe("number");
      expect(typeof time).toBe("number");
      return { requestId, rest };
    });
    expect(native!.requestId).toBe(r.nativeRes.headers.get("x-request-id")!);
    expect(native!.rest).toEqual(hono!.rest);
    expect(native!.rest).toMatchObject({ correlationId: "corr-line", method: "GET", path: "/api/v1/timeline", status: 200 });
  });

  it("hands other methods and HEAD to the app", async () => {
    const post = await fetch(`${p.url}/api/v1/timeline`, { method: "POST", headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": uniqueIp() } });
    const honoPost = await p.s.app.request("/api/v1/timeline", {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": uniqueIp() },
    });
    expect(post.status).toBe(405);
    expectSame(await answer(post), await answer(honoPost));
    const head = await fetch(`${p.url}/api/v1/timeline`, { method: "HEAD", headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": uniqueIp() } });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });
});

describe("GET /api/v1/timeline served natively, the caller's budget", () => {
  const MAX = 3;
  let p: Paths;
  beforeAll(async () => {
    p = await start({ RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_IP_MAX: "1000" });
  });
  afterAll(() => p.s.close());

  it("answers 429 once the caller's budget is spent, from any address, as the Hono route does", async () => {
    const user = await signUp(p.s, "budget");
    for (let i = 0; i < MAX; i++) {
      const res = await fetch(`${p.url}/api/v1/timeline`, { headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": uniqueIp() } });
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-remaining")).toBe(String(MAX - 1 - i));
    }
    const r = await both(p, "/api/v1/timeline", { token: user.token });
    expect(r.native.status).toBe(429);
    expect(r.native.headers["ratelimit-limit"]).toBe(String(MAX));
    expectSame(r.native, r.hono);
  });
});

describe("GET /api/v1/timeline served natively, with Redis", () => {
  // The production set-up: rate limits counted in process between syncs with Redis, and pages
  // served from this process's copies of Redis's. Later requests are answered without a promise
  // (a known token, a count decided here, a page held here): the same answers as the Hono route.
  const IP_MAX = 50;
  let p: Paths;
  let user: Awaited<ReturnType<typeof author>>;
  beforeAll(async () => {
    p = await start({ REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", RATE_LIMIT_MAX: "1000", RATE_LIMIT_IP_MAX: String(IP_MAX) });
    user = await author(p, "native_redis", ["first", "second"]);
  });
  afterAll(() => p.s.close());

  it("answers request after request as the Hono route does, each path from its own address", async () => {
    const [native, hono] = [uniqueIp(), uniqueIp()];
    let n = 0;
    for (let i = 0; i < 12; i++) {
      const r = await both(p, "/api/v1/timeline", { token: user.token, ip: () => (n++ % 2 ? hono : native) });
      expect(r.native.status).toBe(200);
      expect(JSON.parse(r.native.body).items).toHaveLength(2);
      expect(r.native.headers["ratelimit-remaining"]).toBe(String(IP_MAX - 1 - i));
      expectSame(r.native, r.hono);
    }
    // A new post reaches the copies held here (Redis invalidates them) and both paths serve it.
    const res = await p.s.request("/api/v1/posts", {
      method: "POST",
      token: user.token,
      json: { content: "third" },
      headers: { "x-forwarded-for": uniqueIp() },
    });
    expect(res.status).toBe(201);
    await eventually(async () => {
      const r = await both(p, "/api/v1/timeline", { token: user.token });
      return JSON.parse(r.native.body).items.length === 3 && JSON.parse(r.hono.body).items.length === 3;
    });
  });

  it("answers a later request at once, without a promise", async () => {
    const handler = nativeRoutes(p.s.app)["/api/v1/timeline"]!.GET;
    const ip = uniqueIp();
    const read = () =>
      handler(new Request(`${p.url}/api/v1/timeline`, { headers: { authorization: `Bearer ${user.token}`, "x-forwarded-for": ip } }), undefined);
    // The address's first request reads its counter from Redis (a promise); later ones are counted here.
    const first = read();
    expect(first).toBeInstanceOf(Promise);
    expect((await first).status).toBe(200);
    await eventually(() => {
      const res = read();
      return res instanceof Response && res.status === 200;
    });
  });

  it("refuses a bad token and a bad cursor the same way on both paths", async () => {
    const forged = await both(p, "/api/v1/timeline", { token: `${user.token}x` });
    expect(forged.native.status).toBe(401);
    expectSame(forged.native, forged.hono);
    const bad = await both(p, "/api/v1/timeline?cursor=nope!", { token: user.token });
    expect(bad.native.status).toBe(400);
    expectSame(bad.native, bad.hono);
  });
});

describe("with CORS configured", () => {
  it("serves nothing natively: the app adds its headers", async () => {
    const s = await startTestServer({ ROLES: "api", CORS_ORIGINS: "https://example.com" });
    try {
      expect(nativeRoutes(s.app)).toEqual({});
    } finally {
      await s.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import pino from "pino";
import { createHttpApp } from "../../src/http/app.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { requestLineWriter } from "../../src/observability/request-line.ts";
import { expectProblem, newUser, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// What the HTTP edge adds to every request, checked on each kind of answer: the lean middleware
// stack must keep every behaviour the full one had.

type Line = Record<string, unknown>;
const lines: Line[] = [];
const capture = { write: (s: string) => void lines.push(JSON.parse(s) as Line) };
const requestLines = () => lines.filter((l) => l.msg === "request");

let s: TestServer;
let token: string;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" }, { log: createLogger("info", capture) });
  token = (await s.register()).token;
});
afterAll(() => s.close());

/** The headers hono's own secureHeaders middleware sets, as the edge used to run it. */
async function honoSecureHeaders(): Promise<[string, string][]> {
  const ref = new Hono().use(secureHeaders({ contentSecurityPolicy: undefined })).get("/", (c) => c.json({}));
  const res = await ref.request("/");
  return [...res.headers].filter(([name]) => !name.startsWith("content-"));
}

describe("headers on every kind of answer", () => {
  it("carries the ids and exactly hono's secure headers on probes, JSON, problems, HTML, replays and HEAD", async () => {
    const expected = await honoSecureHeaders();
    expect(expected.length).toBeGreaterThanOrEqual(10);
    const ids = { "x-request-id": "req-h", "x-correlation-id": "corr-h" };
    const idem = { ...ids, "idempotency-key": `k-${crypto.randomUUID()}`, "x-forwarded-for": uniqueIp() };
    const user = newUser("hdr");
    await s.request("/api/v1/users", { method: "POST", json: user, headers: idem });
    const answers: Record<string, Response> = {
      health: await s.request("/health", { headers: ids }),
      healthHead: await s.request("/health", { method: "HEAD", headers: ids }),
      ready: await s.request("/ready", { headers: ids }),
      metrics: await s.request("/metrics", { headers: ids }),
      json: await s.request("/api/v1/users/me", { token, headers: ids }),
      problem401: await s.request("/api/v1/users/me", { headers: ids }),
      problem404: await s.request("/no/such/page", { headers: ids }),
      problem405: await s.request("/health", { method: "POST", headers: ids }),
      html: await s.request("/docs", { headers: ids }),
      replay: await s.request("/api/v1/users", { method: "POST", json: user, headers: idem }),
    };
    expect(answers.replay!.headers.get("idempotent-replayed")).toBe("true");
    for (const [kind, res] of Object.entries(answers)) {
      const got = Object.fromEntries(expected.map(([name]) => [name, res.headers.get(name)]));
      expect({ kind, headers: got }).toEqual({ kind, headers: Object.fromEntries(expected) });
      expect({ kind, id: res.headers.get("x-request-id"), corr: res.headers.get("x-correlation-id") }).toEqual({ kind, id: "req-h", corr: "corr-h" });
    }
  });

  it("puts the RateLimit headers on a replayed answer too", async () => {
    const headers = { "idempotency-key": `k-${crypto.randomUUID()}`, "x-forwarded-for": uniqueIp() };
    const user = newUser("rl");
    const first = await s.request("/api/v1/users", { method: "POST", json: user, headers });
    const replay = await s.request("/api/v1/users", { method: "POST", json: user, headers });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    for (const name of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]) {
      expect(first.headers.get(name)).toMatch(/^\d+$/);
      expect(replay.headers.get(name)).toMatch(/^\d+$/);
    }
    expect(Number(replay.headers.get("ratelimit-remaining"))).toBe(Number(first.headers.get("ratelimit-remaining")) - 1);
  });
});

describe("CORS", () => {
  it("answers a preflight and a cross-origin read with the CORS headers, the ids and the secure headers", async () => {
    const t = await startTestServer({ ROLES: "api", CORS_ORIGINS: "https://app.example" });
    try {
      const expected = Object.fromEntries(await honoSecureHeaders());
      const { token: userToken } = await t.register();
      const origin = { origin: "https://app.example", "x-request-id": "req-cors" };
      const preflight = await t.request("/api/v1/users/me", {
        method: "OPTIONS",
        headers: { ...origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
      const read = await t.request("/api/v1/users/me", { token: userToken, headers: origin });
      expect([preflight.status, read.status]).toEqual([204, 200]);
      for (const res of [preflight, read]) {
        expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
        expect(res.headers.get("x-request-id")).toBe("req-cors");
        expect(Object.fromEntries(Object.keys(expected).map((k) => [k, res.headers.get(k)]))).toEqual(expected);
      }
      expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
      expect(read.headers.get("access-control-expose-headers")).toContain("x-request-id");
    } finally {
      await t.close();
    }
  });
});

describe("request log", () => {
  it("writes one line per request with its ids, method, path, status and duration, keys in the order they always had", async () => {
    lines.length = 0;
    const ids = (n: string) => ({ "x-request-id": `req-${n}`, "x-correlation-id": `corr-${n}` });
    await s.request("/api/v1/users/me", { token, headers: ids("me") });
    await s.request("/api/v1/users", { method: "POST", json: {}, headers: ids("bad") });
    await s.request("/api/v1/nothing-here", { headers: ids("missing") });
    await s.request("/ready", { headers: ids("ready") });
    const got = requestLines();
    expect(got.map((l) => [l.requestId, l.correlationId, l.method, l.path, l.status])).toEqual([
      ["req-me", "corr-me", "GET", "/api/v1/users/me", 200],
      ["req-bad", "corr-bad", "POST", "/api/v1/users", 400],
      ["req-missing", "corr-missing", "GET", "/api/v1/nothing-here", 404],
      ["req-ready", "corr-ready", "GET", "/ready", 200],
    ]);
    for (const l of got) {
      expect(Object.keys(l)).toEqual(["level", "time", "service", "requestId", "correlationId", "method", "path", "status", "ms", "msg"]);
      expect(l.level).toBe(30);
      expect(typeof l.ms).toBe("number");
    }
    expect(lines).toHaveLength(got.length); // nothing else was logged for these requests
  });

  it("writes no line for /health and /metrics", async () => {
    lines.length = 0;
    for (const path of ["/health", "/metrics", "/health"]) expect((await s.request(path)).status).toBe(200);
    expect(lines).toEqual([]);
  });

  it("writes exactly one line for each of many concurrent requests, each with its own ids", async () => {
    lines.length = 0;
    const n = 40;
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        s.request(i % 2 ? "/api/v1/users/me" : "/api/v1/missing", { token, headers: { "x-request-id": `many-${i}` } }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((x) => x === 200)).toHaveLength(n / 2);
    const got = requestLines();
    expect(got.map((l) => l.requestId).sort()).toEqual(Array.from({ length: n }, (_, i) => `many-${i}`).sort());
    for (const l of got) expect(l.correlationId).toBe(l.requestId);
  });

  it("logs an unhandled error with the request's ids, beside the request's own line", async () => {
    const errors: Line[] = [];
    const log = createLogger("info", { write: (x: string) => void errors.push(JSON.parse(x) as Line) });
    const app = createHttpApp(
      {
        log,
        verifyToken: async () => {
          throw new Error("no tokens here");
        },
        rateLimiter: createMemoryRateLimiter({ max: 1000, windowSeconds: 60 }),
        idempotencyStore: { begin: async () => ({ state: "new" }), complete: async () => {}, abandon: async () => {} },
        bodyLimitBytes: 1024,
        corsOrigins: [],
        servesApi: true,
        readiness: async () => [],
      },
      (api) => {
        api.get("/boom", () => {
          throw new Error("secret internals");
        });
      },
    );
    const res = await app.request("/api/v1/boom", { headers: { "x-request-id": "boom-2", "x-correlation-id": "corr-boom" } });
    await expectProblem(res, 500, "INTERNAL");
    expect(errors.map((l) => [l.msg, l.requestId, l.correlationId, l.level])).toEqual([
      ["unhandled error", "boom-2", "corr-boom", 50],
      ["request", "boom-2", "corr-boom", 30],
    ]);
    expect((errors[0]!.err as { message: string }).message).toBe("secret internals");
  });

  it("stays silent below the info level", async () => {
    const quiet: string[] = [];
    const t = await startTestServer({ ROLES: "api" }, { log: pino({ level: "warn" }, { write: (x: string) => void quiet.push(x) }) });
    try {
      expect((await t.request("/api/v1/nothing-here")).status).toBe(404);
      expect(quiet).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe("the request line", () => {
  const fields = { requestId: "req-1", correlationId: "corr-1", method: "GET", path: '/api/v1/odd"path\\', status: 200, ms: 3 };
  const withoutTime = (line: string) => line.replace(/"time":("[^"]*"|\d+)/, '"time":0');
  const kinds: [string, (write: (s: string) => void) => import("pino").Logger][] = [
    ["the app's logger", (write) => createLogger("info", { write })],
    ["pino's defaults (pid, hostname, epoch time)", (write) => pino({ level: "info" }, { write })],
    ["a child with bindings", (write) => createLogger("info", { write }).child({ component: "x" })],
    ["a logger with a mixin (written through pino)", (write) => pino({ level: "info", mixin: () => ({ extra: 1 }) }, { write })],
  ];
  for (const [kind, make] of kinds) {
    it(`is written byte for byte as pino writes it: ${kind}`, () => {
      const out: string[] = [];
      const log = make((s) => void out.push(s));
      log.info(fields, "request");
      requestLineWriter(log)(fields);
      expect(out).toHaveLength(2);
      expect(withoutTime(out[1]!)).toBe(withoutTime(out[0]!));
    });
  }

  it("follows the logger's level", () => {
    const out: string[] = [];
    const log = createLogger("warn", { write: (s: string) => void out.push(s) });
    const write = requestLineWriter(log);
    write(fields);
    log.level = "info";
    write(fields);
    expect(out).toHaveLength(1);
  });
});

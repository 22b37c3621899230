import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { z } from "@hono/zod-openapi";
import pino from "pino";
import { createHttpApp, type HttpDeps } from "../../src/http/app.ts";
import type { IdempotencyStore } from "../../src/http/env.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { defineRoute } from "../../src/http/route.ts";
import { expectProblem, fieldPaths, newUser, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const BODY_LIMIT = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let s: TestServer;
let base: string;
beforeAll(async () => {
  s = await startTestServer({ BODY_LIMIT_BYTES: String(BODY_LIMIT), ROLES: "api" });
  base = `http://127.0.0.1:${s.listen()}`;
});
afterAll(() => s.close());

const post = (path: string, json: unknown, headers: Record<string, string> = {}) => s.request(path, { method: "POST", json, headers });

/** streamOf is a request body with no length known up front. */
const streamOf = (text: string) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += 256) controller.enqueue(bytes.subarray(i, i + 256));
      controller.close();
    },
  });

/** bareApp is the HTTP edge alone, with test routes mounted on `/api/v1`. */
function bareApp(mount: Parameters<typeof createHttpApp>[1], over: Partial<HttpDeps> = {}) {
  const store: IdempotencyStore = { begin: async () => ({ state: "new" }), complete: async () => {}, abandon: async () => {} };
  return createHttpApp(
    {
      log: pino({ level: "silent" }),
      verifyToken: async () => {
        throw new Error("no tokens here");
      },
      rateLimiter: createMemoryRateLimiter({ max: 1000, windowSeconds: 60 }),
      idempotencyStore: store,
      bodyLimitBytes: BODY_LIMIT,
      corsOrigins: [],
      servesApi: true,
      readiness: async () => [],
      ...over,
    },
    mount,
  );
}

describe("problem responses", () => {
  it("answers an invalid body with 400 and one error per offending field", async () => {
    const res = await post("/api/v1/users", { username: "A!", email: "not-an-email", password: "short" });
    const p = await expectProblem(res, 400, "VALIDATION.FAILED");
    expect(fieldPaths(p)).toEqual(["email", "password", "username"]);
    for (const e of p.errors!) expect(e.message.length).toBeGreaterThan(0);
  });

  it("answers a bad query parameter with 400 naming the query field", async () => {
    const res = await s.request("/api/v1/events?limit=abc", { token: await s.adminToken() });
    const p = await expectProblem(res, 400, "VALIDATION.FAILED");
    expect(fieldPaths(p)).toEqual(["query.limit"]);
  });

  it("answers malformed JSON with 400", async () => {
    const res = await s.request("/api/v1/users", { method: "POST", body: '{"username": "bob",', headers: { "content-type": "application/json" } });
    await expectProblem(res, 400, "REQUEST.MALFORMED");
  });

  it("answers a missing token with 401", async () => {
    await expectProblem(await s.request("/api/v1/users/me"), 401, "AUTH.MISSING_TOKEN");
  });

  it("answers a user on an admin route with 403", async () => {
    const { token } = await s.register();
    await expectProblem(await s.request("/api/v1/admin/subscriptions", { token }), 403, "AUTH.ADMIN_REQUIRED");
  });

  it("answers an unknown route with 404", async () => {
    const p = await expectProblem(await s.request("/api/v1/no-such-thing"), 404, "HTTP.NOT_FOUND");
    expect(p.instance).toBe("/api/v1/no-such-thing");
  });

  it("answers a wrong method with 405 and an Allow header", async () => {
    const res = await s.request("/api/v1/users/me", { method: "DELETE" });
    expect(res.headers.get("allow")).toBe("GET, HEAD, PATCH");
    await expectProblem(res, 405, "HTTP.METHOD_NOT_ALLOWED");
    const onCollection = await s.request("/api/v1/users", { method: "GET" });
    expect(onCollection.headers.get("allow")).toBe("POST");
    await expectProblem(onCollection, 405, "HTTP.METHOD_NOT_ALLOWED");
  });

  it("answers a value the database cannot store (a NUL character) with 400 and stores nothing", async () => {
    // A display name is user-visible text: refused by validation before the database sees it.
    const user = { ...newUser("nul"), displayName: "a\u0000b" };
    await expectProblem(await post("/api/v1/users", user), 400, "VALIDATION.FAILED");
    const [row] = await s.database.sql`select count(*)::int as n from users.accounts where username = ${user.username}`;
    expect(row!.n).toBe(0);
    const p = await expectProblem(await post("/api/v1/auth/token", { login: "\u0000", password: "x" }), 400, "REQUEST.UNSTORABLE_VALUE");
    expect(p.detail).toContain("cannot be stored");
  });

  it("answers a taken username with 409", async () => {
    const user = newUser("dup");
    expect((await post("/api/v1/users", user)).status).toBe(201);
    await expectProblem(await post("/api/v1/users", { ...user, email: `other.${user.email}` }), 409, "USERS.USERNAME_TAKEN");
  });

  it("answers a body over the limit with 413", async () => {
    const res = await post("/api/v1/users", { ...newUser(), displayName: "x".repeat(BODY_LIMIT) });
    const p = await expectProblem(res, 413, "REQUEST.TOO_LARGE");
    expect(p.detail).toContain(String(BODY_LIMIT));
  });

  it("answers a streamed body over the limit, sent without content-length, with 413", async () => {
    const req = new Request("http://local/api/v1/users", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: streamOf(JSON.stringify({ ...newUser(), displayName: "x".repeat(BODY_LIMIT) })),
    });
    expect(req.headers.has("content-length")).toBe(false);
    await expectProblem(await s.app.request(req), 413, "REQUEST.TOO_LARGE");
  });

  it("answers a chunked body over the limit on the real server with 413", async () => {
    const res = await fetch(`${base}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: streamOf(JSON.stringify({ ...newUser(), displayName: "x".repeat(BODY_LIMIT / 2) }).padEnd(BODY_LIMIT + 200, " ")),
    });
    await expectProblem(res, 413, "REQUEST.TOO_LARGE");
  });

  it("answers a body many times the limit on the real server with a problem, not Bun's bare 413", async () => {
    const res = await fetch(`${base}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...newUser(), displayName: "x".repeat(BODY_LIMIT * 5) }),
    });
    await expectProblem(res, 413, "REQUEST.TOO_LARGE");
  });

  it("lets a streamed body under the limit through", async () => {
    const req = new Request("http://local/api/v1/users", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: streamOf(JSON.stringify(newUser())),
    });
    expect((await s.app.request(req)).status).toBe(201);
  });

  it("answers a text/plain body with 415", async () => {
    const res = await s.request("/api/v1/users", { method: "POST", body: "username=bob", headers: { "content-type": "text/plain" } });
    const p = await expectProblem(res, 415, "REQUEST.UNSUPPORTED_MEDIA_TYPE");
    expect(p.detail).toContain("text/plain");
  });

  it("answers a text/plain body on the real server with 415", async () => {
    const res = await fetch(`${base}/api/v1/users`, { method: "POST", body: "username=bob", headers: { "content-type": "text/plain" } });
    await expectProblem(res, 415, "REQUEST.UNSUPPORTED_MEDIA_TYPE");
  });

  it("answers a reused Idempotency-Key with another body with 422", async () => {
    const headers = { "idempotency-key": `k-${crypto.randomUUID()}`, "x-forwarded-for": uniqueIp() };
    expect((await post("/api/v1/users", newUser(), headers)).status).toBe(201);
    await expectProblem(await post("/api/v1/users", newUser(), headers), 422, "IDEMPOTENCY.KEY_REUSED");
  });

  it("answers an unexpected error with a 500 that reveals nothing internal", async () => {
    const app = bareApp((api) => {
      api.get("/boom", () => {
        throw new Error("secret internals");
      });
    });
    const res = await app.request("/api/v1/boom", { headers: { "x-request-id": "boom-1" } });
    const text = await res.clone().text();
    const p = await expectProblem(res, 500, "INTERNAL");
    expect(p.requestId).toBe("boom-1");
    expect(text).not.toContain("secret");
    expect(text).not.toContain("stack");
    expect(text).not.toContain(".ts");
    expect(Object.keys(p).sort()).toEqual(["code", "detail", "instance", "requestId", "status", "title", "type"]);
  });

  it("answers a failure after the handler has answered with a problem, not the handler's content type", async () => {
    const failingStore: IdempotencyStore = {
      begin: async () => ({ state: "new" }),
      complete: async () => {
        throw new Error("secret: connection reset");
      },
      abandon: async () => {},
    };
    const app = bareApp(
      (api) => {
        api.openapi(
          defineRoute(
            { access: "public", idempotent: true },
            {
              method: "post",
              path: "/things",
              responses: { 201: { description: "Created", content: { "application/json": { schema: z.object({ id: z.string() }) } } } },
            },
          ),
          (c) => {
            c.header("location", "/api/v1/things/1");
            return c.json({ id: "1" }, 201);
          },
        );
      },
      { idempotencyStore: failingStore },
    );
    const res = await app.request("/api/v1/things", { method: "POST", headers: { "idempotency-key": "k1", "content-type": "application/json" }, body: "{}" });
    const text = await res.clone().text();
    // Nothing of the answer that was lost leaks into the problem: not its location, not its type.
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("x-request-id")).toBeTruthy();
    await expectProblem(res, 500, "INTERNAL");
    expect(text).not.toContain("secret");
  });
});

describe("request and correlation ids", () => {
  it("echoes valid ids on a success", async () => {
    const res = await s.request("/health", { headers: { "x-request-id": "req-123", "x-correlation-id": "corr-456" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-123");
    expect(res.headers.get("x-correlation-id")).toBe("corr-456");
  });

  it("echoes valid ids on a problem and puts the request id in the body", async () => {
    const res = await s.request("/api/v1/no-such-thing", { headers: { "x-request-id": "req-789", "x-correlation-id": "corr-012" } });
    expect(res.headers.get("x-request-id")).toBe("req-789");
    expect(res.headers.get("x-correlation-id")).toBe("corr-012");
    expect((await expectProblem(res, 404, "HTTP.NOT_FOUND")).requestId).toBe("req-789");
  });

  it("echoes ids on validation, auth and size problems alike", async () => {
    const headers = { "x-request-id": "req-edge", "x-correlation-id": "corr-edge" };
    const answers = await Promise.all([
      s.request("/api/v1/users", { method: "POST", json: {}, headers }),
      s.request("/api/v1/users/me", { headers }),
      s.request("/api/v1/users", { method: "POST", json: { x: "y".repeat(BODY_LIMIT) }, headers }),
      s.request("/api/v1/users", { method: "POST", body: "x", headers: { ...headers, "content-type": "text/plain" } }),
      s.request("/api/v1/users/me", { method: "PUT", headers }),
    ]);
    expect(answers.map((r) => r.status)).toEqual([400, 401, 413, 415, 405]);
    for (const r of answers) {
      expect(r.headers.get("x-request-id")).toBe("req-edge");
      expect(r.headers.get("x-correlation-id")).toBe("corr-edge");
    }
  });

  it("generates a request id when none or an invalid one is sent, and correlates on it", async () => {
    for (const sent of [undefined, "has spaces in it", "x".repeat(129)]) {
      const res = await s.request("/api/v1/no-such-thing", { headers: sent === undefined ? {} : { "x-request-id": sent, "x-correlation-id": "bad value!" } });
      const id = res.headers.get("x-request-id")!;
      expect(id).toMatch(UUID);
      expect(res.headers.get("x-correlation-id")).toBe(id);
      expect((await expectProblem(res, 404, "HTTP.NOT_FOUND")).requestId).toBe(id);
    }
  });

  it("gives every request its own generated id", async () => {
    const [a, b] = await Promise.all([s.request("/health"), s.request("/health")]);
    expect(a!.headers.get("x-request-id")).not.toBe(b!.headers.get("x-request-id"));
  });
});

describe("secure headers", () => {
  it("sets the secure headers on successes and problems", async () => {
    for (const res of [await s.request("/health"), await s.request("/api/v1/no-such-thing"), await fetch(`${base}/health`)]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
      expect(res.headers.get("strict-transport-security")).toStartWith("max-age=");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("cross-origin-opener-policy")).toBe("same-origin");
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { z } from "@hono/zod-openapi";
import pino from "pino";
import { createHttpApp } from "../../src/http/app.ts";
import { createPgIdempotencyStore, requestHash } from "../../src/http/idempotency.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { defineRoute } from "../../src/http/route.ts";
import { expectProblem, fieldPaths, newUser, signUp, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" });
});
afterAll(() => s.close());

const newKey = () => `key-${crypto.randomUUID()}`;
const register = (body: unknown, headers: Record<string, string>) => s.request("/api/v1/users", { method: "POST", json: body, headers });
const accounts = async (username: string) => {
  const [row] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from users.accounts where username = ${username}`;
  return row!.n;
};

describe("Idempotency-Key", () => {
  it("replays the first answer to a retry with the same key and body, creating one account", async () => {
    const user = newUser("idem");
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp() };
    const first = await register(user, headers);
    const retry = await register(user, headers);
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(await retry.text()).toBe(await first.text());
    expect(retry.headers.get("location")).toBe(first.headers.get("location"));
    expect(retry.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(await accounts(user.username)).toBe(1);
  });

  it("keeps no validation 400 under the key: the corrected retry with the same key runs (issue 11)", async () => {
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp() };
    const user = newUser("fixed");
    const first = await register({ ...user, email: "not-an-email" }, headers);
    expect(first.status).toBe(400);
    const corrected = await register(user, headers);
    expect(corrected.status).toBe(201);
    expect(corrected.headers.get("idempotent-replayed")).toBeNull();
    expect(await accounts(user.username)).toBe(1);
    const replay = await register(user, headers);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
  });

  it("keeps a domain outcome of an operation that ran (409 taken) and replays it", async () => {
    const taken = newUser("taken");
    expect((await register(taken, { "x-forwarded-for": uniqueIp() })).status).toBe(201);
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp() };
    const again = { ...newUser("taken"), username: taken.username };
    const first = await register(again, headers);
    expect(first.status).toBe(409);
    const retry = await register(again, headers);
    expect(retry.status).toBe(409);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.headers.get("content-type")).toBe("application/problem+json");
    expect(await retry.text()).toBe(await first.text());
  });

  it("treats the same JSON with other whitespace and key order as the same request (issue 11)", async () => {
    const user = newUser("spaces");
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp(), "content-type": "application/json" };
    const first = await s.request("/api/v1/users", { method: "POST", headers, body: JSON.stringify(user) });
    expect(first.status).toBe(201);
    const reordered = { password: user.password, email: user.email, username: user.username };
    const retry = await s.request("/api/v1/users", { method: "POST", headers, body: `\n  ${JSON.stringify(reordered, null, 4)}\n` });
    expect(retry.status).toBe(201);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(await accounts(user.username)).toBe(1);
  });

  it("answers the same key with another body with 422 IDEMPOTENCY.KEY_REUSED", async () => {
    const user = newUser("reuse");
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp() };
    expect((await register(user, headers)).status).toBe(201);
    const other = newUser("reuse");
    const p = await expectProblem(await register(other, headers), 422, "IDEMPOTENCY.KEY_REUSED");
    expect(p.detail).toContain("Idempotency-Key");
    expect(await accounts(other.username)).toBe(0);
  });

  it("keeps keys apart per client address", async () => {
    const key = newKey();
    const a = await register(newUser("ipa"), { "idempotency-key": key, "x-forwarded-for": uniqueIp() });
    const b = await register(newUser("ipb"), { "idempotency-key": key, "x-forwarded-for": uniqueIp() });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
  });

  it("keeps keys apart per socket address when no proxy header is sent", async () => {
    const key = newKey();
    const user = newUser("sock");
    const send = (address: string) =>
      s.app.fetch(
        new Request("http://local/api/v1/users", {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify(user),
        }),
        { requestIP: () => ({ address, family: "IPv4", port: 40000 }) },
      );
    expect((await send("192.0.2.20")).status).toBe(201);
    // Another client with the same key and body runs its own request: it must not see the first client's answer.
    const other = await send("192.0.2.21");
    expect(other.headers.get("idempotent-replayed")).toBeNull();
    await expectProblem(other, 409, "USERS.USERNAME_TAKEN");
  });

  it("keeps keys apart per signed-in user, whatever their address", async () => {
    const [alice, bob] = await Promise.all([signUp(s, "alice"), signUp(s, "bob")]);
    const key = newKey();
    const ip = uniqueIp();
    const a = await s.request("/api/v1/users", {
      method: "POST",
      json: newUser("byalice"),
      token: alice.token,
      headers: { "idempotency-key": key, "x-forwarded-for": ip },
    });
    const b = await s.request("/api/v1/users", {
      method: "POST",
      json: newUser("bybob"),
      token: bob.token,
      headers: { "idempotency-key": key, "x-forwarded-for": ip },
    });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
  });

  it("never runs two concurrent requests with one key: one creates, the others get 409 or the replay", async () => {
    const user = newUser("conc");
    const headers = { "idempotency-key": newKey(), "x-forwarded-for": uniqueIp() };
    const answers = await Promise.all(Array.from({ length: 5 }, () => register(user, headers)));
    const created = answers.filter((r) => r.status === 201 && r.headers.get("idempotent-replayed") === null);
    expect(created).toHaveLength(1);
    const body = await created[0]!.text();
    for (const r of answers) {
      if (r === created[0]) continue;
      if (r.status === 409) await expectProblem(r, 409, "IDEMPOTENCY.IN_PROGRESS");
      else {
        expect(r.status).toBe(201);
        expect(r.headers.get("idempotent-replayed")).toBe("true");
        expect(await r.text()).toBe(body);
      }
    }
    expect(await accounts(user.username)).toBe(1);
  });

  it("rejects a malformed key with 400 before doing anything", async () => {
    const user = newUser("badkey");
    for (const key of ["has space", "x".repeat(256), "é", ""]) {
      const p = await expectProblem(await register(user, { "idempotency-key": key }), 400, "VALIDATION.FAILED");
      expect(fieldPaths(p)).toEqual(["header.idempotency-key"]);
    }
    expect(await accounts(user.username)).toBe(0);
  });

  it("accepts a key of 255 characters", async () => {
    const res = await register({ username: "X" }, { "idempotency-key": "k".repeat(255), "x-forwarded-for": uniqueIp() });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("VALIDATION.FAILED");
  });

  describe("with the Postgres store behind a bare app", () => {
    let calls = 0;
    let failNext = false;
    const app = () =>
      createHttpApp(
        {
          log: pino({ level: "silent" }),
          verifyToken: async () => {
            throw new Error("no tokens here");
          },
          rateLimiter: createMemoryRateLimiter({ max: 1000, windowSeconds: 60 }),
          idempotencyStore: createPgIdempotencyStore(s.database.db, 3600),
          bodyLimitBytes: 1024,
          corsOrigins: [],
          trustProxy: true,
          servesApi: true,
          readiness: async () => [],
        },
        (api) => {
          api.openapi(
            defineRoute(
              { access: "public", idempotent: true },
              {
                method: "post",
                path: "/things",
                responses: { 201: { description: "Created", content: { "application/json": { schema: z.object({ n: z.number() }) } } } },
              },
            ),
            (c) => {
              calls++;
              if (failNext) {
                failNext = false;
                throw new Error("transient");
              }
              return c.json({ n: calls }, 201);
            },
          );
        },
      );
    const send = (a: ReturnType<typeof app>, key: string, body: unknown) =>
      a.request("/api/v1/things", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key, "x-forwarded-for": "198.51.100.7" },
        body: JSON.stringify(body),
      });

    it("lets a retry run again after a 5xx", async () => {
      const a = app();
      const key = newKey();
      calls = 0;
      failNext = true;
      expect((await send(a, key, { v: 1 })).status).toBe(500);
      const retry = await send(a, key, { v: 1 });
      expect(retry.status).toBe(201);
      expect(retry.headers.get("idempotent-replayed")).toBeNull();
      const again = await send(a, key, { v: 1 });
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(await again.json()).toEqual({ n: 2 });
      expect(calls).toBe(2);
    });

    it("frees a reservation whose request died mid-flight after a minute, not after 24 hours", async () => {
      const a = app();
      const key = newKey();
      // A reservation with no stored answer: the request that made it crashed.
      const store = createPgIdempotencyStore(s.database.db, 3600);
      const hash = requestHash(new TextEncoder().encode(JSON.stringify({ v: 1 })).buffer as ArrayBuffer);
      expect(await store.begin("ip:198.51.100.7 POST /api/v1/things", key, hash)).toEqual({ state: "new" });
      await expectProblem(await send(a, key, { v: 1 }), 409, "IDEMPOTENCY.IN_PROGRESS");
      await s.database.sql`update outbox.idempotency_keys set created_at = now() - interval '61 seconds' where key = ${key}`;
      expect((await send(a, key, { v: 1 })).status).toBe(201);
    });

    it("frees a key once it has expired", async () => {
      const a = app();
      const key = newKey();
      expect((await send(a, key, { v: 1 })).status).toBe(201);
      await s.database.sql`update outbox.idempotency_keys set expires_at = now() - interval '1 second' where key = ${key}`;
      const reused = await send(a, key, { v: 2 });
      expect(reused.status).toBe(201);
      expect(reused.headers.get("idempotent-replayed")).toBeNull();
    });
  });
});

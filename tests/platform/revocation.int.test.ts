import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sign } from "hono/jwt";
import pino from "pino";
import { createServer, type Server } from "../../src/server.ts";
import { eventually } from "../support/eventually.ts";
import { expectProblem, PASSWORD, signUp } from "../support/http.ts";
import { startTestServer, TEST_JWT_SECRET, type TestServer } from "../support/server.ts";

// Issue 11: a token of a deleted or disabled account kept working everywhere but /users/me, a
// token without `exp` was accepted, and nothing ended a session. Each test here failed before.

const CACHE_MS = 300;
const ME = "/api/v1/users/me";
// A route that reads nothing of the account itself: only the token check can refuse there.
const ORDERS = "/api/v1/orders";
const now = () => Math.floor(Date.now() / 1000);

let s: TestServer;
let adminToken: string;

beforeAll(async () => {
  s = await startTestServer({ ROLES: "api", AUTH_ACCOUNT_CACHE_MS: String(CACHE_MS) });
  adminToken = await s.adminToken();
});
afterAll(() => s.close());

const get = (path: string, token: string) => s.request(path, { token });

describe("a token is refused", () => {
  it("when it has no exp, even though it is signed with the server's secret", async () => {
    const user = await signUp(s, "noexp");
    const forever = await sign({ sub: user.id, role: "user", username: user.username, ver: 0, iss: "eventful-monolith", iat: now() }, TEST_JWT_SECRET, "HS256");
    await expectProblem(await get(ORDERS, forever), 401, "AUTH.TOKEN_INVALID");
    expect((await get(ORDERS, user.token)).status).toBe(200);
  });

  it("once its account is deleted, on every route, within the account cache's lifetime", async () => {
    const user = await signUp(s, "gone");
    expect((await get(ORDERS, user.token)).status).toBe(200);
    await s.database.sql`delete from users.accounts where id = ${user.id}`;
    await eventually(async () => (await get(ORDERS, user.token)).status === 401, 5 * CACHE_MS + 2000);
    await expectProblem(await get(ORDERS, user.token), 401, "AUTH.TOKEN_REVOKED");
    await expectProblem(await get(ME, user.token), 401, "AUTH.TOKEN_REVOKED");
  });

  it("at once when an admin disables the account; it cannot sign in again until enabled", async () => {
    const user = await signUp(s, "disabled");
    expect((await get(ORDERS, user.token)).status).toBe(200);
    expect((await s.request(`/api/v1/admin/users/${user.id}/disable`, { method: "POST", token: adminToken })).status).toBe(204);
    await expectProblem(await get(ORDERS, user.token), 401, "AUTH.TOKEN_REVOKED");
    const login = () => s.request("/api/v1/auth/token", { method: "POST", json: { login: user.username, password: PASSWORD } });
    await expectProblem(await login(), 401, "USERS.INVALID_CREDENTIALS");
    expect((await s.request(`/api/v1/admin/users/${user.id}/enable`, { method: "POST", token: adminToken })).status).toBe(204);
    // Enabling does not bring old sessions back.
    await expectProblem(await get(ORDERS, user.token), 401, "AUTH.TOKEN_REVOKED");
    const again = await login();
    expect(again.status).toBe(200);
    expect((await get(ORDERS, ((await again.json()) as { accessToken: string }).accessToken)).status).toBe(200);
  });

  it("only by an admin: a user cannot disable anyone", async () => {
    const [a, b] = await Promise.all([signUp(s, "a"), signUp(s, "b")]);
    await expectProblem(await s.request(`/api/v1/admin/users/${b.id}/disable`, { method: "POST", token: a.token }), 403, "AUTH.ADMIN_REQUIRED");
    expect((await get(ORDERS, b.token)).status).toBe(200);
  });

  it("after a password change, every older token; the new token works", async () => {
    const user = await signUp(s, "pwchange");
    const other = await s.request("/api/v1/auth/token", { method: "POST", json: { login: user.username, password: PASSWORD } });
    const otherSession = ((await other.json()) as { accessToken: string }).accessToken;
    const wrong = await s.request("/api/v1/users/me/password", {
      method: "PUT",
      token: user.token,
      json: { currentPassword: "not-it-at-all", newPassword: "brand-new-pass" },
    });
    await expectProblem(wrong, 401, "USERS.INVALID_CREDENTIALS");
    expect((await get(ORDERS, user.token)).status).toBe(200);
    const res = await s.request("/api/v1/users/me/password", {
      method: "PUT",
      token: user.token,
      json: { currentPassword: PASSWORD, newPassword: "brand-new-pass" },
    });
    expect(res.status).toBe(200);
    const fresh = ((await res.json()) as { accessToken: string }).accessToken;
    await expectProblem(await get(ORDERS, user.token), 401, "AUTH.TOKEN_REVOKED");
    await expectProblem(await get(ORDERS, otherSession), 401, "AUTH.TOKEN_REVOKED");
    expect((await get(ORDERS, fresh)).status).toBe(200);
  });

  it("by its role in the account, not in the token: a demoted admin's token loses the admin routes", async () => {
    const user = await signUp(s, "demoted");
    await s.database.sql`update users.accounts set role = 'admin' where id = ${user.id}`;
    const login = await s.request("/api/v1/auth/token", { method: "POST", json: { login: user.username, password: PASSWORD } });
    const token = ((await login.json()) as { accessToken: string }).accessToken;
    expect((await get("/api/v1/admin/subscriptions", token)).status).toBe(200);
    await s.database.sql`update users.accounts set role = 'user' where id = ${user.id}`;
    await eventually(async () => (await get("/api/v1/admin/subscriptions", token)).status === 403, 5 * CACHE_MS + 2000);
  });
});

describe("another replica", () => {
  let b: Server;
  beforeAll(async () => {
    b = await createServer(s.config, { log: pino({ level: "silent" }) });
  });
  afterAll(() => b.stop());

  it("refuses a disabled account's token within its account cache's lifetime", async () => {
    const user = await signUp(s, "replica");
    const onB = () => b.app.request(ORDERS, { headers: { authorization: `Bearer ${user.token}` } });
    expect((await onB()).status).toBe(200);
    expect((await s.request(`/api/v1/admin/users/${user.id}/disable`, { method: "POST", token: adminToken })).status).toBe(204);
    const started = performance.now();
    await eventually(async () => (await onB()).status === 401, 5 * CACHE_MS + 2000);
    expect(performance.now() - started).toBeLessThan(CACHE_MS + 1500);
  });
});

describe("a new configured admin password", () => {
  it("ends the admin's sessions when a start applies it", async () => {
    const t = await startTestServer({ ROLES: "api", AUTH_ACCOUNT_CACHE_MS: "0" });
    let restarted: Server | undefined;
    try {
      const old = await t.adminToken();
      expect((await t.request("/api/v1/admin/subscriptions", { token: old })).status).toBe(200);
      // Another start on the same database with a new ADMIN_PASSWORD (a rotation).
      restarted = await createServer({ ...t.config, ADMIN_PASSWORD: "a-rotated-admin-password" }, { log: pino({ level: "silent" }) });
      await expectProblem(await t.request("/api/v1/admin/subscriptions", { token: old }), 401, "AUTH.TOKEN_REVOKED");
    } finally {
      await restarted?.stop();
      await t.close();
    }
  });
});

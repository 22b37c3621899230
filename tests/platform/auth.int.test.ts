import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sign } from "hono/jwt";
import { expectProblem } from "../support/http.ts";
import { startTestServer, TEST_JWT_SECRET, type TestServer } from "../support/server.ts";

const SECRET = TEST_JWT_SECRET;
const ISSUER = "eventful-monolith";
const ADMIN_ROUTE = "/api/v1/admin/subscriptions";
const ME = "/api/v1/users/me";

let s: TestServer;
let user: { id: string; token: string; username: string };
let adminToken: string;

beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" });
  [user, adminToken] = await Promise.all([s.register(), s.adminToken()]);
});
afterAll(() => s.close());

const now = () => Math.floor(Date.now() / 1000);
const claims = (over: Record<string, unknown> = {}) => ({
  sub: user.id,
  role: "user",
  username: user.username,
  ver: 0,
  iss: ISSUER,
  iat: now(),
  exp: now() + 600,
  ...over,
});
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const withAuth = (path: string, authorization: string) => s.request(path, { headers: { authorization } });

describe("bearer tokens", () => {
  it("accepts a token issued at login", async () => {
    const res = await s.request(ME, { token: user.token });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(user.id);
  });

  it("accepts a token it did not issue itself but signed with the secret and issuer", async () => {
    const res = await withAuth(ME, `Bearer ${await sign(claims(), SECRET, "HS256")}`);
    expect(res.status).toBe(200);
  });

  it("rejects a request with no token", async () => {
    await expectProblem(await s.request(ME), 401, "AUTH.MISSING_TOKEN");
  });

  it("rejects a scheme other than Bearer", async () => {
    for (const header of [`Basic ${btoa("admin:admin")}`, `Token ${user.token}`, user.token, "Bearer", "Bearer "]) {
      await expectProblem(await withAuth(ME, header), 401, "AUTH.TOKEN_INVALID");
    }
  });

  it("accepts the scheme name in any case", async () => {
    expect((await withAuth(ME, `bearer ${user.token}`)).status).toBe(200);
  });

  it("rejects a token that is not a JWT", async () => {
    await expectProblem(await withAuth(ME, "Bearer not-a-jwt"), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects an expired token as expired", async () => {
    const expired = await sign(claims({ iat: now() - 7200, exp: now() - 3600 }), SECRET, "HS256");
    const p = await expectProblem(await withAuth(ME, `Bearer ${expired}`), 401, "AUTH.TOKEN_EXPIRED");
    expect(p.detail).toContain("expired");
  });

  it("rejects a token whose signature was altered", async () => {
    const [header, payload, signature] = user.token.split(".") as [string, string, string];
    const i = Math.floor(signature.length / 2);
    const flipped = signature.slice(0, i) + (signature[i] === "A" ? "B" : "A") + signature.slice(i + 1);
    await expectProblem(await withAuth(ME, `Bearer ${header}.${payload}.${flipped}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects a user token edited to the admin role, even on an admin route", async () => {
    const [header, , signature] = user.token.split(".") as [string, string, string];
    const forged = `${header}.${b64url(claims({ role: "admin" }))}.${signature}`;
    await expectProblem(await withAuth(ADMIN_ROUTE, `Bearer ${forged}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects a token signed with another secret", async () => {
    const other = await sign(claims({ role: "admin" }), "another-secret-of-at-least-32-characters!!", "HS256");
    await expectProblem(await withAuth(ADMIN_ROUTE, `Bearer ${other}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects an unsigned token (alg none)", async () => {
    const unsigned = `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims({ role: "admin" }))}.`;
    await expectProblem(await withAuth(ADMIN_ROUTE, `Bearer ${unsigned}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects a token from another issuer", async () => {
    const foreign = await sign(claims({ iss: "someone-else" }), SECRET, "HS256");
    await expectProblem(await withAuth(ME, `Bearer ${foreign}`), 401, "AUTH.TOKEN_INVALID");
    const noIssuer = await sign({ ...claims(), iss: undefined }, SECRET, "HS256");
    await expectProblem(await withAuth(ME, `Bearer ${noIssuer}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects a validly signed token without a known role", async () => {
    const odd = await sign(claims({ role: "superuser" }), SECRET, "HS256");
    await expectProblem(await withAuth(ME, `Bearer ${odd}`), 401, "AUTH.TOKEN_INVALID");
  });

  it("rejects a bad token on a public route instead of ignoring it", async () => {
    const res = await s.request("/api/v1/auth/token", { method: "POST", json: { login: "x", password: "y" }, headers: { authorization: "Bearer not-a-jwt" } });
    await expectProblem(res, 401, "AUTH.TOKEN_INVALID");
  });
});

describe("roles", () => {
  it("forbids a user token on an admin route", async () => {
    await expectProblem(await s.request(ADMIN_ROUTE, { token: user.token }), 403, "AUTH.ADMIN_REQUIRED");
  });

  it("allows an admin token on an admin route", async () => {
    const res = await s.request(ADMIN_ROUTE, { token: adminToken });
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty("subscriptions");
  });

  it("allows an admin token on a user route", async () => {
    const res = await s.request(ME, { token: adminToken });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ role: "admin" });
  });
});

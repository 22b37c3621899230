import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import pino from "pino";
import { createUsersModule } from "../../../modules/users/index.ts";
import { createJwtAuth } from "../../../src/http/auth.ts";
import { createServer } from "../../../src/server.ts";
import { expectProblem, fieldPaths, newUser, PASSWORD } from "../../support/http.ts";
import { ADMIN, startTestServer, type TestServer } from "../../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" });
});
afterAll(() => s.close());

const register = (body: unknown, headers: Record<string, string> = {}) => s.request("/api/v1/users", { method: "POST", json: body, headers });
const login = (login: string, password: string) => s.request("/api/v1/auth/token", { method: "POST", json: { login, password } });

const countAccounts = async (where: { username?: string; email?: string }) => {
  const [row] = await s.database.sql<{ n: number }[]>`
    select count(*)::int as n from users.accounts
    where (${where.username ?? null}::text is null or lower(username) = lower(${where.username ?? null}::text))
      and (${where.email ?? null}::text is null or lower(email) = lower(${where.email ?? null}::text))`;
  return row!.n;
};
const registeredEvents = (field: "username" | "email", value: string) =>
  s.database.sql<{ subject: string; data: Record<string, unknown>; correlation_id: string }[]>`
    select subject, data, correlation_id from outbox.events where type = 'user.registered' and lower(data->>${field}) = lower(${value})`;

describe("registration", () => {
  it("creates an account and answers 201 with its public fields and no password or hash", async () => {
    const user = newUser("reg");
    const res = await register({ ...user, displayName: "  Reg User  " });
    expect(res.status).toBe(201);
    const text = await res.text();
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toMatchObject({ username: user.username, email: user.email, displayName: "Reg User", role: "user" });
    expect(body.id).toBeString();
    expect(new Date(body.createdAt as string).toISOString()).toBe(body.createdAt as string);
    expect(res.headers.get("location")).toBe(`/api/v1/users/${body.id}`);
    expect(Object.keys(body).sort()).toEqual(["createdAt", "displayName", "email", "id", "role", "username"]);
    expect(text.toLowerCase()).not.toContain("password");
    expect(text).not.toContain("$argon2");
    expect(text).not.toContain(PASSWORD);
  });

  it("defaults the display name to the username", async () => {
    const user = newUser("dn");
    const res = await register(user);
    expect(await res.json()).toMatchObject({ displayName: user.username });
  });

  it("stores the email in lower case", async () => {
    const user = newUser("lc");
    const res = await register({ ...user, email: user.email.toUpperCase() });
    expect(await res.json()).toMatchObject({ email: user.email });
  });

  it("accepts usernames of 3 and of 30 characters and a password of 8", async () => {
    const answers = await Promise.all([
      register({ username: "a_1", email: "three@example.com", password: "12345678" }),
      register({ username: "z".repeat(30), email: "thirty@example.com", password: "12345678" }),
    ]);
    expect(answers.map((r) => r.status)).toEqual([201, 201]);
  });

  it("rejects usernames outside 3-30 characters of letters a-z in either case, digits and _", async () => {
    for (const username of ["ab", "z".repeat(31), "has-dash", "has space", "émile", ""]) {
      const p = await expectProblem(await register({ username, email: "rules@example.com", password: PASSWORD }), 400, "VALIDATION.FAILED");
      expect(fieldPaths(p)).toEqual(["username"]);
    }
    expect(await countAccounts({ email: "rules@example.com" })).toBe(0);
  });

  it("rejects a password shorter than 8 characters", async () => {
    const p = await expectProblem(await register({ ...newUser(), password: "1234567" }), 400, "VALIDATION.FAILED");
    expect(fieldPaths(p)).toEqual(["password"]);
  });

  it("rejects missing fields, each by name", async () => {
    const p = await expectProblem(await register({}), 400, "VALIDATION.FAILED");
    expect(fieldPaths(p)).toEqual(["email", "password", "username"]);
  });

  it("rejects unknown fields, so nobody can register as an admin", async () => {
    const user = newUser("wannabe");
    const p = await expectProblem(await register({ ...user, role: "admin" }), 400, "VALIDATION.FAILED");
    expect(p.errors).toEqual([expect.objectContaining({ path: "role", code: "unrecognized_keys" })]);
    expect(await countAccounts({ username: user.username })).toBe(0);
  });

  it("keeps the case a username was typed in, and refuses the same name in another case", async () => {
    const lower = newUser("case").username;
    const typed = `Al_${lower.slice(5)}`.replace(/[a-z]/g, (ch, i: number) => (i % 2 ? ch.toUpperCase() : ch));
    const res = await register({ username: typed, email: `${lower}@example.com`, password: PASSWORD });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ username: typed, displayName: typed });
    for (const variant of [typed.toLowerCase(), typed.toUpperCase()]) {
      await expectProblem(await register({ username: variant, email: `${variant}.other@example.com`, password: PASSWORD }), 409, "USERS.USERNAME_TAKEN");
    }
    const tokens = await Promise.all([typed, typed.toLowerCase(), typed.toUpperCase()].map((l) => login(l, PASSWORD)));
    expect(tokens.map((t) => t.status)).toEqual([200, 200, 200]);
    expect(await countAccounts({ username: typed })).toBe(1);
  });

  it("answers 409 USERS.USERNAME_TAKEN for a taken username", async () => {
    const user = newUser("taken");
    expect((await register(user)).status).toBe(201);
    const p = await expectProblem(await register({ ...user, email: `second.${user.email}` }), 409, "USERS.USERNAME_TAKEN");
    expect(p.detail).toContain("username");
    expect(await countAccounts({ username: user.username })).toBe(1);
  });

  it("answers 409 USERS.EMAIL_TAKEN for a taken email in any case", async () => {
    const user = newUser("mail");
    expect((await register(user)).status).toBe(201);
    const p = await expectProblem(await register({ ...newUser("other"), email: user.email.toUpperCase() }), 409, "USERS.EMAIL_TAKEN");
    expect(p.detail).toContain("email");
    expect(await countAccounts({ email: user.email })).toBe(1);
  });

  it("lets exactly one of ten simultaneous registrations of one username through", async () => {
    const username = newUser("race").username;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => register({ username, email: `${username}.${i}@example.com`, password: PASSWORD })));
    expect(answers.map((r) => r.status).sort()).toEqual([201, ...Array<number>(9).fill(409)]);
    for (const r of answers.filter((a) => a.status === 409)) await expectProblem(r, 409, "USERS.USERNAME_TAKEN");
    expect(await countAccounts({ username })).toBe(1);
    expect(await registeredEvents("username", username)).toHaveLength(1);
  });

  it("lets exactly one of ten simultaneous registrations of one email through", async () => {
    const email = `${newUser("race").username}@example.com`;
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => register({ username: newUser(`r${i}`).username, email: i % 2 ? email : email.toUpperCase(), password: PASSWORD })),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([201, ...Array<number>(9).fill(409)]);
    for (const r of answers.filter((a) => a.status === 409)) await expectProblem(r, 409, "USERS.EMAIL_TAKEN");
    expect(await countAccounts({ email })).toBe(1);
    expect(await registeredEvents("email", email)).toHaveLength(1);
  });
});

describe("user.registered", () => {
  it("is appended in the registering transaction, without the password, correlated with the request", async () => {
    const user = newUser("evt");
    const correlationId = `corr-${crypto.randomUUID()}`;
    const res = await register({ ...user, displayName: "Evt" }, { "x-correlation-id": correlationId });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const events = await registeredEvents("username", user.username);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event!.subject).toBe(id);
    expect(event!.correlation_id).toBe(correlationId);
    expect(event!.data).toEqual({ userId: id, username: user.username, displayName: "Evt", email: user.email });
    expect(JSON.stringify(event!.data).toLowerCase()).not.toContain("password");
    // The account row and the event were written by one transaction.
    const [tx] = await s.database.sql<{ same: boolean }[]>`
      select a.xmin::text::bigint = (e.transaction_id::text::bigint % 4294967296) as same
      from users.accounts a join outbox.events e on e.subject = a.id::text
      where a.id = ${id} and e.type = 'user.registered'`;
    expect(tx!.same).toBe(true);
  });

  it("correlates on the request id when no correlation id is sent", async () => {
    const user = newUser("evt");
    const res = await register(user, { "x-request-id": `req-${user.username}` });
    expect(res.status).toBe(201);
    const [event] = await registeredEvents("username", user.username);
    expect(event!.correlation_id).toBe(`req-${user.username}`);
  });

  it("is not appended when registration fails", async () => {
    const user = newUser("fail");
    expect((await register(user)).status).toBe(201);
    expect((await register({ ...user, username: newUser("fail2").username })).status).toBe(409);
    expect(await registeredEvents("email", user.email)).toHaveLength(1);
  });
});

describe("login", () => {
  let user: { username: string; email: string; password: string };
  beforeAll(async () => {
    user = newUser("login");
    expect((await register(user)).status).toBe(201);
  });

  it("issues a bearer token for the username or the email, in any case", async () => {
    const answers = await Promise.all([user.username, user.username.toUpperCase(), user.email, user.email.toUpperCase()].map((l) => login(l, PASSWORD)));
    for (const res of answers) {
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({ accessToken: expect.any(String), tokenType: "Bearer", expiresIn: s.config.JWT_TTL_SECONDS });
    }
  });

  it("answers a wrong password and an unknown user with the same 401", async () => {
    const [wrong, unknown] = await Promise.all([login(user.username, "wrong-password"), login("nobody_here", PASSWORD)]);
    const a = await expectProblem(wrong, 401, "USERS.INVALID_CREDENTIALS");
    const b = await expectProblem(unknown, 401, "USERS.INVALID_CREDENTIALS");
    const { requestId: _a, ...restA } = a;
    const { requestId: _b, ...restB } = b;
    expect(restA).toEqual(restB);
  });

  it("shows the signed-in user their own account at /users/me", async () => {
    const res = await login(user.email, PASSWORD);
    const { accessToken } = (await res.json()) as { accessToken: string };
    const me = await s.request("/api/v1/users/me", { token: accessToken });
    expect(me.status).toBe(200);
    const text = await me.text();
    expect(JSON.parse(text)).toMatchObject({ username: user.username, email: user.email, role: "user" });
    expect(text.toLowerCase()).not.toContain("password");
  });
});

describe("admin bootstrap", () => {
  const admins = async () =>
    (await s.database.sql<{ role: string }[]>`select role from users.accounts where lower(username) = ${ADMIN.username}`).map((r) => r.role);

  it("creates the configured admin, who logs in with the admin role", async () => {
    expect(await admins()).toEqual(["admin"]);
    const res = await s.request("/api/v1/users/me", { token: await s.adminToken() });
    expect(await res.json()).toMatchObject({ username: ADMIN.username, role: "admin" });
  });

  it("is idempotent when the users module starts again", async () => {
    const users = s.modules.find((m) => m.name === "users")!;
    await users.start!();
    await users.start!();
    expect(await admins()).toEqual(["admin"]);
    expect((await login(ADMIN.username, ADMIN.password)).status).toBe(200);
  });

  it("is idempotent when a second server starts on the same database", async () => {
    const second = await createServer(s.config, { log: pino({ level: "silent" }) });
    try {
      expect(await admins()).toEqual(["admin"]);
      const res = await second.app.request("/api/v1/auth/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ login: ADMIN.username, password: ADMIN.password }),
      });
      expect(res.status).toBe(200);
    } finally {
      await second.stop();
    }
  });

  it("ends with one admin when several replicas bootstrap a new admin at once", async () => {
    const admin = { username: newUser("boss").username, email: `${newUser("boss").username}@example.com`, password: "boss-password-1" };
    const replicas = Array.from({ length: 3 }, () =>
      createUsersModule({
        db: s.database.db,
        outbox: s.outbox.appender,
        tokens: createJwtAuth(s.config.JWT_SECRET, 60, { accounts: async () => undefined }),
        admin,
      }),
    );
    await Promise.all(replicas.map((r) => r.start!()));
    const rows = await s.database.sql<{ role: string }[]>`select role from users.accounts where lower(username) = ${admin.username}`;
    expect(rows.map((r) => r.role)).toEqual(["admin"]);
    const res = await login(admin.email, admin.password);
    expect(res.status).toBe(200);
  });
});

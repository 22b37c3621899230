import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sign } from "hono/jwt";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { type AppProcess, freePort, killAll, ROOT, spawnApp } from "../support/process.ts";

// Issue 11: `bun run start` without NODE_ENV and JWT_SECRET ran with a development secret written
// in src/config.ts, so a token signed with that public string and `role: admin` got 200 on the
// admin API; the admin's development password was public too. Now nothing in the source is a
// secret: a missing one is generated on first start and kept in SECRETS_FILE.

let tdb: TestDatabase;
let dir: string;
let secretsFile: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "secrets-"));
  secretsFile = join(dir, "data", "secrets.json");
});

afterAll(async () => {
  await killAll();
  await tdb?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** start runs `bun src/main.ts` as `bun run start` would on a laptop: no NODE_ENV, no secrets in the environment. */
async function start(): Promise<AppProcess> {
  const app = spawnApp(
    ["bun", "src/main.ts"],
    {
      DATABASE_URL: tdb.url,
      NODE_ENV: undefined,
      JWT_SECRET: undefined,
      ADMIN_PASSWORD: undefined,
      SECRETS_FILE: secretsFile,
      ROLES: "api",
      LOG_LEVEL: "info",
      // Thousands of forged tokens come from one address: this test is not about rate limits.
      RATE_LIMIT_MAX: "1000000",
      RATE_LIMIT_IP_MAX: "1000000",
    },
    await freePort(),
  );
  await app.ready();
  return app;
}

/** sourceStrings are the string literals of every source file, and the README's and Dockerfile's code spans. */
function sourceStrings(): string[] {
  const found = new Set<string>();
  const literal = /"((?:[^"\\\n]|\\.){1,300})"|'((?:[^'\\\n]|\\.){1,300})'|`([^`$\\]{1,300})`/g;
  const walk = (d: string) => {
    for (const entry of readdirSync(join(ROOT, d), { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|sql|json)$/.test(entry.name)) scan(readFileSync(join(ROOT, path), "utf8"));
    }
  };
  const scan = (text: string) => {
    for (const m of text.matchAll(literal)) found.add(m[1] ?? m[2] ?? m[3]!);
  };
  for (const d of ["src", "modules", "outbox", "tests", "bench"]) walk(d);
  for (const f of ["README.md", "Dockerfile", "package.json"]) scan(readFileSync(join(ROOT, f), "utf8"));
  // The secrets this codebase once shipped as defaults.
  found.add("dev-only-jwt-secret-change-me-0123456789");
  found.add("admin-dev-password");
  return [...found];
}

describe("a start without secrets outside production", () => {
  let adminPassword: string;
  let adminToken: string;
  let adminId: string;

  it("generates the admin password, prints it once, and keeps both secrets in a 0600 file", async () => {
    const app = await start();
    const printed = /generated the admin password \\"([^"\\]+)\\"/.exec(app.output());
    expect(printed).not.toBeNull();
    adminPassword = printed![1]!;
    expect(adminPassword.length).toBeGreaterThanOrEqual(20);
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const kept = JSON.parse(readFileSync(secretsFile, "utf8")) as { jwtSecret: string; adminPassword: string };
    expect(kept.adminPassword).toBe(adminPassword);
    expect(kept.jwtSecret.length).toBeGreaterThanOrEqual(48);
    const login = await fetch(`${app.url}/api/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: "admin", password: adminPassword }),
    });
    expect(login.status).toBe(200);
    adminToken = ((await login.json()) as { accessToken: string }).accessToken;
    const me = await fetch(`${app.url}/api/v1/users/me`, { headers: { authorization: `Bearer ${adminToken}` } });
    adminId = ((await me.json()) as { id: string }).id;
    expect((await fetch(`${app.url}/api/v1/admin/subscriptions`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);
  });

  it("refuses an admin token signed with any string in the source", async () => {
    const app = await start();
    const strings = sourceStrings();
    expect(strings.length).toBeGreaterThan(1000);
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: adminId, role: "admin", username: "admin", ver: 0, iss: "eventful-monolith", iat: now, exp: now + 600 };
    const statuses = new Map<number, number>();
    for (let i = 0; i < strings.length; i += 64) {
      const batch = await Promise.all(
        strings.slice(i, i + 64).map(async (secret) => {
          const forged = await sign(claims, secret, "HS256");
          return (await fetch(`${app.url}/api/v1/admin/subscriptions`, { headers: { authorization: `Bearer ${forged}` } })).status;
        }),
      );
      for (const status of batch) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: strings.length });
    // The same claims signed with the generated secret do pass: the refusals are the secret's doing.
    const kept = JSON.parse(readFileSync(secretsFile, "utf8")) as { jwtSecret: string };
    const real = await sign(claims, kept.jwtSecret, "HS256");
    expect((await fetch(`${app.url}/api/v1/admin/subscriptions`, { headers: { authorization: `Bearer ${real}` } })).status).toBe(200);
    await app.stop();
  });

  it("keeps the secrets across a restart: old tokens still work, and the password is not printed again", async () => {
    await killAll();
    const app = await start();
    expect(app.output()).not.toContain(adminPassword);
    expect(app.output()).not.toContain("generated the admin password");
    expect((await fetch(`${app.url}/api/v1/admin/subscriptions`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);
  });
});

describe("production", () => {
  it("refuses to start without JWT_SECRET and ADMIN_PASSWORD, generating nothing", async () => {
    const file = join(dir, "prod", "secrets.json");
    const app = spawnApp(
      ["bun", "src/main.ts"],
      { DATABASE_URL: tdb.url, NODE_ENV: "production", JWT_SECRET: undefined, ADMIN_PASSWORD: undefined, SECRETS_FILE: file },
      await freePort(),
    );
    expect(await app.finished()).toBe(2);
    expect(app.output()).toContain("JWT_SECRET: is required in production");
    expect(app.output()).toContain("ADMIN_PASSWORD: is required in production");
    expect(() => statSync(file)).toThrow();
  });
});

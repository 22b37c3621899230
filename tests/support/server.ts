import pino, { type Logger } from "pino";
import { loadConfig } from "../../src/config.ts";
import { createServer, type Server } from "../../src/server.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

/** TestServer is a composed app on a fresh database, plus request helpers. */
export interface TestServer extends Server {
  tdb: TestDatabase;
  /** request sends through `app.request()` in process. */
  request(path: string, init?: RequestInit & { json?: unknown; token?: string }): Promise<Response>;
  /** register creates a user and returns its id and token. */
  register(username?: string): Promise<{ id: string; token: string; username: string }>;
  adminToken(): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;
export const ADMIN = { username: "root_admin", password: "admin-test-password" };
/** TEST_JWT_SECRET is the secret test servers are given explicitly (nothing in the source has a default). */
export const TEST_JWT_SECRET = `test-secret-${crypto.randomUUID()}`;

/**
 * startTestServer composes the whole application on a fresh database with quiet logs (or
 * `opts.log`). `env` overrides configuration (e.g. `{ ROLES: "api" }`).
 */
export async function startTestServer(env: Record<string, string> = {}, opts: { log?: Logger } = {}): Promise<TestServer> {
  const tdb = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: tdb.url,
    LOG_LEVEL: "silent",
    PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_USERNAME: ADMIN.username,
    ADMIN_PASSWORD: ADMIN.password,
    JWT_SECRET: TEST_JWT_SECRET,
    WORKER_POLL_MS: "200",
    // As the sessions consumer's: tests that ingest in steps wait for the feature store after each.
    ANALYTICS_FEATURES_LINGER: "1s",
    RATE_LIMIT_MAX: "100000",
    RATE_LIMIT_IP_MAX: "100000",
    SIGNIN_MAX_FAILURES: "100000",
    DATABASE_POOL_MAX: "5",
    // Tests stand in for many clients through x-forwarded-for.
    TRUST_PROXY: "true",
    ...env,
  });
  const server = await createServer(config, { log: opts.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }) }).catch(async (err) => {
    await tdb.drop();
    throw err;
  });
  const request: TestServer["request"] = (path, init = {}) => {
    const { json, token, headers, ...rest } = init;
    const h = new Headers(headers);
    if (json !== undefined) h.set("content-type", "application/json");
    if (token) h.set("authorization", `Bearer ${token}`);
    return Promise.resolve(server.app.request(path, { ...rest, headers: h, body: json !== undefined ? JSON.stringify(json) : rest.body }));
  };
  const login = async (login: string, password: string) => {
    const res = await request("/api/v1/auth/token", { method: "POST", json: { login, password } });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { accessToken: string }).accessToken;
  };
  return Object.assign(server, {
    tdb,
    request,
    async register(username = `user_${process.pid}_${++counter}`) {
      const res = await request("/api/v1/users", { method: "POST", json: { username, email: `${username}@example.com`, password: "password123" } });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      return { id, username, token: await login(username, "password123") };
    },
    adminToken: () => login(ADMIN.username, ADMIN.password),
    async close() {
      await server.stop();
      await tdb.drop();
    },
  });
}

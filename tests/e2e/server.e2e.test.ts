import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import postgres from "postgres";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { type AppProcess, connectOutcome, freePort, killAll, newUser, spawnApp } from "../support/process.ts";

const SHUTDOWN_TIMEOUT_MS = 5000;
// The slow client holds its request body open this long: long enough to signal in the middle.
const BODY_PAUSE_MS = 800;

let tdb: TestDatabase;
let app: AppProcess;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: tdb.url, SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }, await freePort());
  await app.ready();
});

afterAll(async () => {
  await killAll();
  await tdb?.drop();
});

describe("a real server process (bun src/main.ts)", () => {
  it("answers /health and /ready with 200", async () => {
    const health = await fetch(`${app.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${app.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("answers /health over the wire as the app's route does: ids and security headers on GET and HEAD, 405 problem for other methods", async () => {
    const ids = { "x-request-id": "probe-1", "x-correlation-id": "flow-1" };
    for (const method of ["GET", "HEAD"]) {
      const res = await fetch(`${app.url}/health`, { method, headers: ids });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toBe("probe-1");
      expect(res.headers.get("x-correlation-id")).toBe("flow-1");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.text()).toBe(method === "GET" ? JSON.stringify({ status: "ok" }) : "");
    }
    const fresh = await fetch(`${app.url}/health`);
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const post = await fetch(`${app.url}/health`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toContain("GET");
    expect(post.headers.get("content-type")).toContain("application/problem+json");
  });

  it("on SIGTERM refuses new connections, finishes the in-flight request and exits 0 in time", async () => {
    const user = newUser("drain");
    const json = JSON.stringify(user);
    const half = Math.floor(json.length / 2);
    const encoder = new TextEncoder();
    let body!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        body = controller;
        controller.enqueue(encoder.encode(json.slice(0, half)));
      },
    });
    const started = performance.now();
    const response = fetch(`${app.url}/api/v1/users`, { method: "POST", body: stream, headers: { "content-type": "application/json" }, keepalive: false });

    // Part of the scenario, not a wait for an effect: the client is mid-body when the signal lands.
    await Bun.sleep(BODY_PAUSE_MS / 3);
    const signalled = performance.now();
    app.proc.kill("SIGTERM");
    const exit = Promise.race([app.proc.exited, Bun.sleep(SHUTDOWN_TIMEOUT_MS + 2000).then(() => "still running" as const)]);

    // While it drains, the listener is closed: a new connection is refused at once.
    await eventually(async () => (await connectOutcome(app.port)) === "ECONNREFUSED", 2000, 10);
    expect(app.proc.exitCode).toBeNull(); // still draining our request

    await Bun.sleep(Math.max(0, started + BODY_PAUSE_MS - performance.now()));
    body.enqueue(encoder.encode(json.slice(half)));
    body.close();

    const res = await response;
    const text = await res.text();
    expect({ status: res.status, text }).toMatchObject({ status: 201 });
    expect(JSON.parse(text)).toMatchObject({ username: user.username });

    expect(await exit).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(await connectOutcome(app.port)).toBe("ECONNREFUSED");

    // The drained request's transaction committed before the pool closed.
    const sql = postgres(tdb.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`select count(*)::int as n from users.accounts where username = ${user.username}`;
      expect(row!.n).toBe(1);
    } finally {
      await sql.end({ timeout: 2 });
    }
    expect(app.output()).not.toContain('"level":50'); // no error logged while shutting down
  });
});

describe("a request that outlives SHUTDOWN_TIMEOUT_MS", () => {
  it("is cut off at the deadline and the process still exits 0 promptly", async () => {
    const deadlineMs = 500;
    const db = await createTestDatabase();
    try {
      const slow = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: db.url, SHUTDOWN_TIMEOUT_MS: String(deadlineMs) }, await freePort());
      await slow.ready();
      const encoder = new TextEncoder();
      // A client that sends half a body and then never finishes it.
      const stream = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(encoder.encode('{"username":')) });
      const response = fetch(`${slow.url}/api/v1/users`, {
        method: "POST",
        body: stream,
        headers: { "content-type": "application/json" },
        keepalive: false,
      }).then(
        (r) => r.status,
        (e: Error) => e.name,
      );
      await Bun.sleep(200); // the client is mid-body when the signal lands
      const signalled = performance.now();
      slow.proc.kill("SIGTERM");
      const code = await Promise.race([slow.proc.exited, Bun.sleep(deadlineMs + 4000).then(() => "still running" as const)]);
      const took = performance.now() - signalled;
      expect(code).toBe(0);
      expect(took).toBeGreaterThanOrEqual(deadlineMs - 50);
      expect(took).toBeLessThan(deadlineMs + 3000);
      expect(await response).not.toBe(201);
      expect(slow.output()).toContain("shutdown deadline reached");
    } finally {
      await killAll();
      await db.drop();
    }
  });
});

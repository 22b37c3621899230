import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { MAX_EVENT_BYTES, MAX_PATTERN_LENGTH } from "../../outbox/pattern/limits.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { type AppProcess, freePort, killAll, spawnApp, TEST_PROCESS_SECRETS } from "../support/process.ts";

// Issue 11, bounded work per request: over real HTTP, against a real server process, the two
// hostile inputs from the probe (150 KB: a 50,000-character equals-ignore-case inside suffix vs a
// 100,000-character value, which took 28 s and froze the process; 12,000 $or branches vs a
// 12,000-element array, 4.7 s) answer within a second or are refused as too large, while /health
// (Bun's native route) and /ready (an app route: the JavaScript event loop) keep answering.

const ANSWER_MS = 1000;
let tdb: TestDatabase;
let app: AppProcess;
let adminToken: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: tdb.url, ROLES: "api", LOG_LEVEL: "warn", ADMIN_USERNAME: "admin" }, await freePort());
  await app.ready();
  const res = await fetch(`${app.url}/api/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login: "admin", password: TEST_PROCESS_SECRETS.ADMIN_PASSWORD }),
  });
  expect(res.status).toBe(200);
  adminToken = ((await res.json()) as { accessToken: string }).accessToken;
});

afterAll(async () => {
  await killAll();
  await tdb?.drop();
});

/** probeWhile polls /health and /ready back to back until `work` settles; returns each probe's status and time. */
async function probeWhile<T>(work: Promise<T>): Promise<{ result: T; probes: { path: string; status: number; ms: number }[] }> {
  const probes: { path: string; status: number; ms: number }[] = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      for (const path of ["/health", "/ready"]) {
        const started = performance.now();
        const status = await fetch(app.url + path, { signal: AbortSignal.timeout(5000) }).then(
          (r) => r.status,
          () => 0,
        );
        probes.push({ path, status, ms: performance.now() - started });
      }
    }
  })();
  try {
    return { result: await work, probes };
  } finally {
    done = true;
    await loop;
  }
}

async function testPattern(body: string): Promise<{ status: number; code?: string; ms: number; bytes: number }> {
  const started = performance.now();
  const res = await fetch(`${app.url}/api/v1/admin/events/test-pattern`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body,
  });
  const json = (await res.json()) as { code?: string };
  return { status: res.status, code: json.code, ms: performance.now() - started, bytes: body.length };
}

function expectBounded(r: Awaited<ReturnType<typeof testPattern>>, probes: { path: string; status: number; ms: number }[]) {
  expect(r.ms).toBeLessThan(ANSWER_MS);
  // Answered (200) or refused as too large / too complex (400): never a 5xx, never a hang.
  expect([200, 400, 413]).toContain(r.status);
  expect(probes.length).toBeGreaterThan(0);
  expect(probes.filter((p) => p.status !== 200)).toEqual([]);
  expect(Math.max(...probes.map((p) => p.ms))).toBeLessThan(ANSWER_MS);
}

describe("test-pattern with hostile input, over HTTP", () => {
  it("answers the 150 KB equals-ignore-case-inside-suffix probe within a second (refused as too large), /health and /ready answering throughout", async () => {
    const pattern = { detail: { v: [{ suffix: { "equals-ignore-case": "a".repeat(50_000) } }] } };
    const event = { source: "x", "detail-type": "y", detail: { v: "A".repeat(100_000) } };
    const body = JSON.stringify({ pattern, event });
    expect(body.length).toBeGreaterThan(150_000);
    const { result, probes } = await probeWhile(testPattern(body));
    expectBounded(result, probes);
    expect(result).toMatchObject({ status: 400, code: "EVENTS.PATTERN_TOO_COMPLEX" });
  });

  it("answers 12,000 $or branches against a 12,000-element array within a second (refused as too large), probes answering throughout", async () => {
    const pattern = { detail: { $or: Array.from({ length: 12_000 }, (_, i) => ({ v: [i] })) } };
    const event = { source: "x", "detail-type": "y", detail: { v: Array.from({ length: 12_000 }, (_, i) => i) } };
    const { result, probes } = await probeWhile(testPattern(JSON.stringify({ pattern, event })));
    expectBounded(result, probes);
    expect(result).toMatchObject({ status: 400, code: "EVENTS.PATTERN_TOO_COMPLEX" });
  });

  it("answers the largest accepted inputs within a second: a full-length $or pattern against a full-size event", async () => {
    // As many $or branches as fit in the 2048-character quota, each a suffix, against an array
    // of values filling the 256 KB event limit: the most work the limits allow.
    const branches: unknown[] = [];
    for (let i = 0; JSON.stringify({ detail: { $or: [...branches, { v: [{ suffix: `s${i}` }] }] } }).length <= MAX_PATTERN_LENGTH; i++)
      branches.push({ v: [{ suffix: `s${i}` }] });
    const pattern = { detail: { $or: branches } };
    const values: string[] = [];
    const value = "z".repeat(60);
    while (JSON.stringify(values).length < MAX_EVENT_BYTES - 1000) values.push(value);
    const event = { source: "x", "detail-type": "y", detail: { v: values } };
    const { result, probes } = await probeWhile(testPattern(JSON.stringify({ pattern, event })));
    expectBounded(result, probes);
    expect(result.status).toBe(200);
    console.info(`largest accepted: ${branches.length} $or branches x ${values.length} values, ${result.bytes} bytes: ${result.ms.toFixed(0)} ms`);
  });
});

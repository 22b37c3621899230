import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { connect } from "node:net";
import { createLogger } from "../../src/observability/logger.ts";
import { eventually } from "../support/eventually.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Issue 11: a client that disconnects in the middle of its body (Content-Length larger than
// what it sent) got a 500 logged as an unhandled error. It is the client's doing: a 4xx, at info.

type Line = { level: number; msg: string; status?: number; path?: string; requestId?: string };
const lines: Line[] = [];
let s: TestServer;
let port: number;

beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" }, { log: createLogger("info", { write: (l: string) => void lines.push(JSON.parse(l) as Line) }) });
  port = s.listen();
});
afterAll(() => s.close());

/** sendHalf writes a request whose body stops halfway through its Content-Length, then hangs up. */
function sendHalf(requestId: string, headers: Record<string, string>): Promise<void> {
  const body = JSON.stringify({ username: "half_body", email: "half@example.com", password: "password123" });
  const head = [
    "POST /api/v1/users HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    "Content-Type: application/json",
    `Content-Length: ${body.length * 2}`,
    `X-Request-Id: ${requestId}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join("\r\n");
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`${head}\r\n\r\n${body}`);
      setTimeout(() => {
        socket.destroy();
        done();
      }, 100);
    });
    socket.on("error", () => done());
  });
}

describe("a body cut short by the client", () => {
  for (const [name, headers] of [
    ["read by the idempotency check", { "Idempotency-Key": `k-${crypto.randomUUID()}` }],
    ["read by the validator", {}],
  ] as const) {
    it(`is a 4xx logged at info, not a 500 (${name})`, async () => {
      const requestId = `cut-${crypto.randomUUID()}`;
      await sendHalf(requestId, headers);
      const line = await eventually(() => lines.find((l) => l.requestId === requestId && l.msg === "request") ?? false, 5000);
      expect(line.status).toBeGreaterThanOrEqual(400);
      expect(line.status).toBeLessThan(500);
      const mine = lines.filter((l) => l.requestId === requestId);
      expect(mine.filter((l) => l.level >= 40)).toEqual([]);
    });
  }
});

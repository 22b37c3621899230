import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sql } from "drizzle-orm";
import { createLogger } from "../../src/observability/logger.ts";
import { expectProblem, PASSWORD, unique, uniqueIp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Issue 11: a value Postgres refuses (a NUL character) logged the statement's parameters: the
// argon2id hash, the email, the login. Logs now carry the SQLSTATE, the constraint or column and
// the request id, never a parameter.

const lines: string[] = [];
let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" }, { log: createLogger("debug", { write: (line: string) => void lines.push(line) }) });
});
afterAll(() => s.close());

/** logged runs `act` and returns the log lines it wrote. */
async function logged(act: () => Promise<void>): Promise<string> {
  const from = lines.length;
  await act();
  return lines.slice(from).join("\n");
}

describe("a request value the database refuses", () => {
  it("answers 400 to a NUL in the login and logs the SQLSTATE and request id, not the login or password", async () => {
    const login = `${unique("victim")}@example.com\u0000`;
    const password = "correct-horse-battery-staple";
    let requestId = "";
    const log = await logged(async () => {
      const res = await s.request("/api/v1/auth/token", { method: "POST", json: { login, password }, headers: { "x-forwarded-for": uniqueIp() } });
      requestId = (await expectProblem(res, 400, "REQUEST.UNSTORABLE_VALUE")).requestId!;
    });
    expect(log).toContain('"sqlState":"22021"');
    expect(log).toContain(requestId);
    expect(log).not.toContain(login.slice(0, -1));
    expect(log).not.toContain(password);
    expect(log).not.toContain("params");
  });

  it("refuses a NUL in the display name with a 400 before anything is hashed or stored, and logs no email or password", async () => {
    const username = unique("nul");
    const email = `${username}@example.com`;
    const log = await logged(async () => {
      const res = await s.request("/api/v1/users", {
        method: "POST",
        json: { username, email, password: PASSWORD, displayName: "Eve\u0000" },
        headers: { "x-forwarded-for": uniqueIp() },
      });
      const p = await expectProblem(res, 400, "VALIDATION.FAILED");
      expect(p.errors?.[0]?.message).toContain("U+0000");
    });
    expect(log).not.toContain("$argon2");
    expect(log).not.toContain(email);
    expect(log).not.toContain(PASSWORD);
    const [row] = await s.database.sql`select count(*)::int as n from users.accounts where lower(username) = ${username}`;
    expect(row?.n).toBe(0);
  });

  it("logs a failed statement's error without its parameters, even those of an insert carrying a password hash", async () => {
    const hash = await Bun.password.hash("a-secret-password", { algorithm: "argon2id" });
    const email = `${unique("leak")}@example.com`;
    let thrown: unknown;
    try {
      await s.database.db.execute(sql`select ${hash}::text as h, ${email}::text as e, ${"x\u0000y"}::text as n`);
    } catch (err) {
      thrown = err;
    }
    // The driver's error does carry them: that is what must not reach a line.
    expect(String((thrown as Error).message)).toContain(hash);
    const log = await logged(async () => {
      createLogger("info", { write: (line: string) => void lines.push(line) }).error({ err: thrown }, "statement failed");
    });
    expect(log).toContain('"code":"22021"');
    expect(log).toContain("Failed query: select $1::text");
    expect(log).not.toContain(hash);
    expect(log).not.toContain(email);
  });

  it("redacts credential fields by name wherever they are logged", async () => {
    const log = await logged(async () => {
      createLogger("info", { write: (line: string) => void lines.push(line) }).info(
        {
          password: "p4ss-word",
          user: { email: "who@example.com", passwordHash: "$argon2id$x" },
          headers: { authorization: "Bearer abc.def.ghi" },
          token: "tok-123",
        },
        "careless",
      );
    });
    for (const secret of ["p4ss-word", "who@example.com", "$argon2id$x", "abc.def.ghi", "tok-123"]) expect(log).not.toContain(secret);
  });
});

import { expect } from "bun:test";
import type { Problem } from "../../src/http/problem.ts";
import type { TestServer } from "./server.ts";

export const PASSWORD = "password123";

let seq = 0;
/** unique returns a name no other test (or concurrent run) uses: lower-case, at most 30 chars. */
export const unique = (prefix: string) => `${prefix}_${Date.now().toString(36).slice(-5)}${(++seq).toString(36)}${Math.random().toString(36).slice(2, 5)}`;

/** uniqueIp returns a documentation-range address unlikely to collide with another run. */
export const uniqueIp = () => `10.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;

/**
 * expectProblem asserts an RFC 9457 problem response: status, content type, every standard
 * member, our `code`, and the `requestId` that matches the `x-request-id` header.
 */
export async function expectProblem(res: Response, status: number, code: string): Promise<Problem> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = JSON.parse(text) as Problem;
  expect(body).toMatchObject({ status, code });
  expect(body.type).toStartWith("https://");
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  expect(typeof body.instance).toBe("string");
  expect(body.requestId).toBeString();
  expect(body.requestId).toBe(res.headers.get("x-request-id")!);
  return body;
}

/** fieldPaths lists the `errors[].path` of a 400 problem. */
export const fieldPaths = (p: Problem) => (p.errors ?? []).map((e) => e.path).sort();

/** newUser builds a valid registration body with a unique username and email. */
export function newUser(prefix = "u"): { username: string; email: string; password: string } {
  const username = unique(prefix);
  return { username, email: `${username}@example.com`, password: PASSWORD };
}

/**
 * signUp registers and logs in a user from its own client address (x-forwarded-for), so
 * tests with a tiny rate limit do not spend their anonymous budget on set-up.
 */
export async function signUp(s: TestServer, prefix = "u"): Promise<{ id: string; username: string; email: string; token: string }> {
  const user = newUser(prefix);
  const ip = uniqueIp();
  const res = await s.request("/api/v1/users", { method: "POST", json: user, headers: { "x-forwarded-for": ip } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const login = await s.request("/api/v1/auth/token", {
    method: "POST",
    json: { login: user.username, password: PASSWORD },
    headers: { "x-forwarded-for": ip },
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  return { id, username: user.username, email: user.email, token: accessToken };
}
